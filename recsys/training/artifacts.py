"""Versioned model artifacts: weights, config, feature spec, metrics and the data they came from.

An artifact is a directory ``<root>/<model_name>/<version>/`` holding ``weights.pt`` (a
``state_dict`` saved with :func:`torch.save`, loaded with ``weights_only=True``) and
``manifest.json`` (everything else, plain JSON). ``version`` is ``<UTC timestamp>-<content hash>``
so versions sort by time and two trainings of the same weights share the hash. Loading checks the
artifact's feature spec against the one the caller derives from the current tables and refuses a
mismatch with :class:`FeatureSpecMismatchError`, naming the differing keys.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    import torch

WEIGHTS: Final = "weights.pt"
MANIFEST: Final = "manifest.json"
FORMAT_VERSION: Final = 1
#: ``extra`` key of a ranker artifact: the two-tower version whose score it reads. The ranker's
#: ``extra`` keys are read and written only through :class:`recsys.training.bundle.RankerInputs`.
RETRIEVER_VERSION: Final = "retriever_version"
#: ``extra`` key of a ranker artifact: the SASRec version whose score it reads (absent: none).
SEQUENCER_VERSION: Final = "sequencer_version"
#: ``extra`` key of a ranker artifact: its co-visitation settings (``CovisitConfig`` fields;
#: absent: no co-visitation input).
COVISIT_CONFIG: Final = "covisit"

JsonDict = dict[str, Any]


class FeatureSpecMismatchError(ValueError):
    """The artifact was trained on features that differ from the current tables."""


@dataclass(frozen=True, slots=True)
class Artifact:
    """A saved model: where it is and what its manifest says.

    Attributes:
        path: Directory of the artifact.
        model_name: e.g. ``two_tower``, ``sasrec``, ``ranker``.
        version: ``YYYYmmddTHHMMSSZ-<sha256 prefix of the weights>``.
        config: The model config as a JSON-able mapping (rebuilds the ``nn.Module``).
        feature_spec: Vocabulary sizes, dimensions, orders and ids the model's inputs depend on.
        metrics: Validation metrics at the chosen epoch, e.g. ``{"ndcg@10": 0.05}``.
        data_versions: Delta version of every input table read, ``{"features.item_features": 3}``.
        extra: Anything else worth keeping (seed, epochs, timings).
    """

    path: Path
    model_name: str
    version: str
    config: JsonDict
    feature_spec: JsonDict
    metrics: Mapping[str, float]
    data_versions: Mapping[str, int]
    extra: JsonDict

    def load_state_dict(self, map_location: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
        """The weights, loaded with ``weights_only=True`` (no pickled code runs)."""
        import torch  # here, not at the top: reading manifests (gate, registry) needs no torch

        state = torch.load(self.path / WEIGHTS, map_location=map_location, weights_only=True)
        if not isinstance(state, dict):
            raise TypeError(f"{self.path / WEIGHTS}: expected a state_dict, got {type(state)}")
        return state


def _digest(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()[:12]


def save_artifact(
    root: Path,
    model_name: str,
    state_dict: Mapping[str, torch.Tensor],
    *,
    config: JsonDict,
    feature_spec: JsonDict,
    metrics: Mapping[str, float],
    data_versions: Mapping[str, int],
    extra: JsonDict | None = None,
    now: datetime | None = None,
) -> Artifact:
    """Write a new artifact atomically (staged in a temp dir, then renamed) and return it."""
    if not model_name.isidentifier():
        raise ValueError(f"model_name: expected an identifier, got {model_name!r}")
    import torch

    buffer = io.BytesIO()
    torch.save(dict(state_dict), buffer)
    blob = buffer.getvalue()
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    version = stamp + "-" + _digest(blob)
    manifest: JsonDict = {
        "format_version": FORMAT_VERSION,
        "model_name": model_name,
        "version": version,
        "config": config,
        "feature_spec": feature_spec,
        "metrics": {k: float(v) for k, v in metrics.items()},
        "data_versions": {k: int(v) for k, v in data_versions.items()},
        "extra": extra or {},
    }
    target = root / model_name / version
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=target.parent))
    (staging / WEIGHTS).write_bytes(blob)
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    if target.exists():
        shutil.rmtree(staging)  # same second and same weights: already saved
    else:
        staging.rename(target)
    return read_artifact(target)


def read_artifact(path: Path) -> Artifact:
    """Read an artifact's manifest (weights stay on disk until :meth:`Artifact.load_state_dict`)."""
    manifest_path = path / MANIFEST
    if not manifest_path.is_file() or not (path / WEIGHTS).is_file():
        raise FileNotFoundError(f"path: no model artifact at {str(path)!r}")
    raw = json.loads(manifest_path.read_text())
    if raw.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{manifest_path}: format_version {raw.get('format_version')!r} is not {FORMAT_VERSION}"
        )
    return Artifact(
        path=path,
        model_name=raw["model_name"],
        version=raw["version"],
        config=raw["config"],
        feature_spec=raw["feature_spec"],
        metrics=raw["metrics"],
        data_versions=raw["data_versions"],
        extra=raw["extra"],
    )


def latest_artifact(root: Path, model_name: str) -> Artifact | None:
    """The most recent artifact of ``model_name`` under ``root`` (None when there is none)."""
    directory = root / model_name
    if not directory.is_dir():
        return None
    versions = sorted(p for p in directory.iterdir() if p.is_dir() and not p.name.startswith("."))
    return read_artifact(versions[-1]) if versions else None


def check_feature_spec(artifact: Artifact, current: JsonDict) -> None:
    """Refuse an artifact whose feature spec differs from ``current``.

    Raises:
        FeatureSpecMismatchError: naming every key whose value differs or is missing.
    """
    keys = sorted(set(artifact.feature_spec) | set(current))
    differ = [k for k in keys if artifact.feature_spec.get(k) != current.get(k)]
    if differ:
        details = "; ".join(
            f"{k}: artifact {artifact.feature_spec.get(k)!r} vs tables {current.get(k)!r}"
            for k in differ[:5]
        )
        raise FeatureSpecMismatchError(
            f"{artifact.model_name} {artifact.version} was trained on other features ({details}); "
            "retrain it on the current tables"
        )
