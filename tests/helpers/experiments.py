"""Experiment and layer entries of an experiments-config mapping, as the YAML file holds them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def experiment(
    exp_id: str,
    start: object,
    end: object,
    buckets: Sequence[int],
    variants: Mapping[str, float],
    **extra: Any,
) -> dict[str, Any]:
    """The mapping of experiment ``exp_id`` running ``start`` to ``end`` (ISO strings or dates,
    passed as given) on ``buckets`` ``[lo, hi)`` of 0-10000; ``variants``: id -> weight,
    the first one the control. ``extra`` keys (``ramp``, ``targeting``, ``salt``) are
    added as given."""
    arms: list[dict[str, Any]] = [{"id": v, "weight": w} for v, w in variants.items()]
    arms[0]["control"] = True
    return {
        "id": exp_id,
        "start": start,
        "end": end,
        "buckets": list(buckets),
        "variants": arms,
        **extra,
    }


def layer(layer_id: str, *experiments: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """The mapping of layer ``layer_id`` holding ``experiments`` (``extra``: e.g. ``salt``)."""
    return {"id": layer_id, "experiments": list(experiments), **extra}
