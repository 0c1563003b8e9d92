"""Champion registry: which artifact of each model is the one serving, and why.

The champion of ``model_name`` is recorded in ``<root>/<model_name>/CHAMPION.json`` (written
atomically by rename, so a reader sees the old pointer or the new one). These per-model pointers
are informational since model bundles: what serves is the champion *bundle*
(:mod:`recsys.training.bundle`), and the gate moves these pointers with it. A warehouse from
before bundles serves the bundle its ranker champion was trained in. :func:`resolve_artifact`
(an explicit version, else the champion, else the latest) resolves one model alone; serving
never pairs models through it.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from recsys.training.artifacts import Artifact, latest_artifact, read_artifact

CHAMPION_FILE: Final = "CHAMPION.json"
#: Folder of the artifacts under a local warehouse root, when no explicit directory is given.
MODELS_DIR: Final = "_models"

log = logging.getLogger(__name__)


def artifacts_root(explicit: Path | None, warehouse_root: str) -> Path:
    """``explicit``, else ``<warehouse_root>/_models`` for a local warehouse.

    Raises:
        ValueError: no ``explicit`` directory and the warehouse is not on a local path.
    """
    if explicit is not None:
        return explicit
    if "://" in warehouse_root and not warehouse_root.startswith("file://"):
        raise ValueError(
            f"artifacts_dir: required when the warehouse is not on a local path, got"
            f" warehouse_root={warehouse_root!r}"
        )
    return Path(warehouse_root.removeprefix("file://")) / MODELS_DIR


@dataclass(frozen=True, slots=True)
class Champion:
    """The serving version of a model and the decision that made it so.

    Attributes:
        model_name: e.g. ``two_tower``.
        version: Artifact version (a directory under ``<root>/<model_name>/``).
        ndcg_at_10: Offline NDCG@10 the decision was based on, in [0, 1].
        decided_at: When it was promoted, UTC ISO-8601.
        reason: One line on why.
    """

    model_name: str
    version: str
    ndcg_at_10: float
    decided_at: str
    reason: str


def read_champion(root: Path, model_name: str) -> Champion | None:
    """The recorded champion of ``model_name`` under ``root``; None when none was promoted."""
    path = root / model_name / CHAMPION_FILE
    if not path.is_file():
        return None
    raw = json.loads(path.read_text(encoding="utf-8"))
    return Champion(
        model_name=str(raw["model_name"]),
        version=str(raw["version"]),
        ndcg_at_10=float(raw["ndcg_at_10"]),
        decided_at=str(raw["decided_at"]),
        reason=str(raw["reason"]),
    )


def set_champion(root: Path, artifact: Artifact, ndcg_at_10: float, reason: str) -> Champion:
    """Record ``artifact`` as the champion of its model (atomic replace of the pointer)."""
    if not (root / artifact.model_name / artifact.version).is_dir():
        raise ValueError(f"artifact: {artifact.version!r} is not under {str(root)!r}")
    champion = Champion(
        model_name=artifact.model_name,
        version=artifact.version,
        ndcg_at_10=float(ndcg_at_10),
        decided_at=datetime.now(UTC).isoformat(timespec="seconds"),
        reason=reason,
    )
    write_json_atomic(root / artifact.model_name / CHAMPION_FILE, _asdict(champion))
    return champion


def write_json_atomic(path: Path, payload: Mapping[str, object]) -> None:
    """Write ``payload`` as JSON to ``path`` so that a reader sees the old file or the new one.

    Staged in a temp file of the same folder (flushed to disk), then renamed over ``path``; on
    any error the temp file is removed and ``path`` is left as it was.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + path.stem.lower() + "-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(dict(payload), fh, indent=2, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _asdict(c: Champion) -> dict[str, object]:
    return {
        "model_name": c.model_name,
        "version": c.version,
        "ndcg_at_10": c.ndcg_at_10,
        "decided_at": c.decided_at,
        "reason": c.reason,
    }


def resolve_artifact(root: Path, model_name: str, version: str | None = None) -> Artifact:
    """The artifact to serve: ``version`` when given, else the champion, else the latest.

    Raises:
        FileNotFoundError: when no artifact of ``model_name`` exists under ``root`` (or the
            requested version does not).
    """
    if version is not None:
        return read_artifact(root / model_name / version)
    champion = read_champion(root, model_name)
    if champion is not None:
        return read_artifact(root / model_name / champion.version)
    latest = latest_artifact(root, model_name)
    if latest is None:
        raise FileNotFoundError(f"model_name: no {model_name!r} artifact under {str(root)!r}")
    log.info("%s: no champion recorded, using the latest artifact %s", model_name, latest.version)
    return latest
