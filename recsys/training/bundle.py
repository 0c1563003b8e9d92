"""Model bundles: the two-tower, SASRec, ranker and co-visitation settings that serve together.

A ranker is trained against one two-tower (its retrieval score is an input), optionally one SASRec
(candidates and next-item log-probability) and optionally co-visitation settings. Those four are
evaluated, promoted and served as one unit, the :class:`ModelBundle`; nothing pairs a two-tower
with a ranker trained on another one.

Layout under the artifacts root (beside ``<model>/<version>/``)::

    bundles/<bundle_id>.json   one per ranker, written by jobs/train.py after the ranker
    bundles/CHAMPION.json      the serving bundle, written by jobs/promote.py

Both are written atomically (temp file + rename). The bundle id is the members' versions joined by
``+``: ``<two_tower>+<sasrec>+<ranker>``, or ``<two_tower>+<ranker>`` without SASRec. It is the
``model_version`` of the ``two_tower+ranker`` rows of ``eval.offline_metrics`` and of the
``model`` rows of ``serve.ranked``, so a metric row, a promotion and a served list name the same
thing. :meth:`ModelBundle.load` is the one loader; it refuses (:class:`BundleMismatchError`) a
bundle whose ranker records other inputs than the bundle says.

Bundles from before this module (a ranker without ``bundles/<id>.json``) are derived from the
ranker's manifest; a warehouse with per-model ``CHAMPION.json`` pointers and no bundle pointer
serves the bundle of its ranker champion (see ``docs/model-bundle.md``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Literal

from recsys.training.artifacts import (
    COVISIT_CONFIG,
    RETRIEVER_VERSION,
    SEQUENCER_VERSION,
    Artifact,
    JsonDict,
    latest_artifact,
    read_artifact,
)
from recsys.training.covisit import CovisitConfig
from recsys.training.registry import CHAMPION_FILE, read_champion, write_json_atomic

log = logging.getLogger(__name__)

#: Folder of the bundle files under the artifacts root.
BUNDLES_DIR: Final = "bundles"
BUNDLE_FORMAT: Final = 1
MemberName = Literal["two_tower", "sasrec", "ranker"]
MEMBERS: Final[tuple[MemberName, ...]] = ("two_tower", "sasrec", "ranker")
_PART: Final = r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}"
BUNDLE_ID_PATTERN: Final = re.compile(rf"{_PART}(\+{_PART}){{1,2}}")


class BundleMismatchError(ValueError):
    """A bundle (or a pinned version) pairs models that were not trained together."""


def check_bundle_id(name: str, value: str) -> str:
    """``value`` when it is a well-formed bundle id (2 or 3 versions joined by ``+``).

    Raises:
        ValueError: naming ``name`` and the value.
    """
    if not isinstance(value, str) or not BUNDLE_ID_PATTERN.fullmatch(value):
        raise ValueError(
            f"{name}: expected a bundle id <two_tower>[+<sasrec>]+<ranker>, got {value!r}"
        )
    return value


@dataclass(frozen=True, slots=True)
class RankerInputs:
    """What a ranker artifact records about the models it was trained against.

    Attributes:
        retriever_version: The two-tower version whose score it reads.
        sequencer_version: The SASRec version whose score and candidates it reads, or None.
        covisit: Its co-visitation settings, or None (no co-visitation input).
    """

    retriever_version: str
    sequencer_version: str | None = None
    covisit: CovisitConfig | None = None

    @classmethod
    def from_artifact(cls, ranker: Artifact) -> RankerInputs:
        """Parse a ranker's ``extra`` (the only reader of those keys).

        Raises:
            BundleMismatchError: the artifact is not a ranker or records no two-tower version.
        """
        if ranker.model_name != "ranker":
            raise BundleMismatchError(
                f"ranker: {ranker.model_name} artifact {ranker.version} is not a ranker"
            )
        extra = ranker.extra
        retriever = extra.get(RETRIEVER_VERSION)
        if not isinstance(retriever, str) or not retriever:
            raise BundleMismatchError(
                f"ranker {ranker.version} records no two-tower version ({RETRIEVER_VERSION!r}); "
                "its pair is unknown: retrain the ranker"
            )
        seq = extra.get(SEQUENCER_VERSION)
        cov = extra.get(COVISIT_CONFIG)
        return cls(
            retriever_version=retriever,
            sequencer_version=None if seq is None else str(seq),
            covisit=None if cov is None else CovisitConfig(**cov),
        )

    def as_extra(self) -> JsonDict:
        """The ``extra`` entries of a ranker artifact trained on these inputs."""
        out: JsonDict = {RETRIEVER_VERSION: self.retriever_version}
        if self.sequencer_version is not None:
            out[SEQUENCER_VERSION] = self.sequencer_version
        if self.covisit is not None:
            out[COVISIT_CONFIG] = dataclasses.asdict(self.covisit)
        return out


@dataclass(frozen=True, slots=True)
class ModelBundle:
    """The models that are evaluated, promoted and served together.

    Attributes:
        two_tower: Two-tower artifact version (retrieval, and an input of the ranker).
        ranker: Ranker artifact version, trained against ``two_tower`` and ``sasrec``.
        sasrec: SASRec artifact version (candidates and an input of the ranker), or None.
        covisit: Co-visitation settings of the ranker's input, or None.
        created_at: When the ranker was trained, UTC ISO-8601 ('' when unknown).
    """

    two_tower: str
    ranker: str
    sasrec: str | None = None
    covisit: CovisitConfig | None = None
    created_at: str = ""

    @property
    def bundle_id(self) -> str:
        """``<two_tower>+<sasrec>+<ranker>`` (``<two_tower>+<ranker>`` without SASRec)."""
        parts = (self.two_tower, self.sasrec, self.ranker)
        return "+".join(p for p in parts if p is not None)

    @property
    def ranker_inputs(self) -> RankerInputs:
        """What the ranker of this bundle must record."""
        return RankerInputs(self.two_tower, self.sasrec, self.covisit)

    def version_of(self, name: str) -> str | None:
        """The bundle's version of member ``name`` (None: the bundle has no SASRec).

        Raises:
            ValueError: ``name`` is not one of :data:`MEMBERS`.
        """
        if name == "two_tower":
            return self.two_tower
        if name == "sasrec":
            return self.sasrec
        if name == "ranker":
            return self.ranker
        raise ValueError(f"name: expected one of {MEMBERS}, got {name!r}")

    def artifact(self, root: Path, name: str) -> Artifact:
        """The manifest of member ``name`` under ``root``.

        Raises:
            FileNotFoundError: the bundle has no such member, or its artifact is missing.
        """
        version = self.version_of(name)
        if version is None:
            raise FileNotFoundError(f"bundle {self.bundle_id} has no {name} model")
        return read_artifact(root / name / version)

    @classmethod
    def from_ranker(cls, root: Path, ranker: Artifact | str) -> ModelBundle:
        """The bundle a ranker artifact (or version under ``root``) was trained in."""
        art = ranker if isinstance(ranker, Artifact) else read_artifact(root / "ranker" / ranker)
        inputs = RankerInputs.from_artifact(art)
        return cls(
            two_tower=inputs.retriever_version,
            ranker=art.version,
            sasrec=inputs.sequencer_version,
            covisit=inputs.covisit,
            created_at=_stamp_iso(art.version),
        )

    def check(self, root: Path) -> None:
        """Refuse a bundle that does not hold together under ``root``.

        Raises:
            FileNotFoundError: a member's artifact is missing.
            BundleMismatchError: the ranker records another two-tower, SASRec or co-visitation
                setting than the bundle.
        """
        check_bundle_id("bundle_id", self.bundle_id)
        recorded = RankerInputs.from_artifact(self.artifact(root, "ranker"))
        if recorded != self.ranker_inputs:
            raise BundleMismatchError(
                f"bundle {self.bundle_id}: ranker {self.ranker} was trained with two_tower "
                f"{recorded.retriever_version}, sasrec {recorded.sequencer_version}, covisit "
                f"{recorded.covisit}; the bundle pairs it with two_tower {self.two_tower}, "
                f"sasrec {self.sasrec}, covisit {self.covisit}: refusing a mismatched pair"
            )
        for name in ("two_tower", "sasrec"):
            if self.version_of(name) is not None:
                self.artifact(root, name)

    def save(self, root: Path) -> Path:
        """Check the bundle and write ``bundles/<bundle_id>.json`` atomically; returns the path."""
        self.check(root)
        path = root / BUNDLES_DIR / (self.bundle_id + ".json")
        write_json_atomic(path, self.to_json())
        return path

    def to_json(self) -> JsonDict:
        return {
            "format": BUNDLE_FORMAT,
            "bundle_id": self.bundle_id,
            "two_tower": self.two_tower,
            "sasrec": self.sasrec,
            "ranker": self.ranker,
            "covisit": None if self.covisit is None else dataclasses.asdict(self.covisit),
            "created_at": self.created_at,
        }

    @classmethod
    def from_json(cls, raw: JsonDict, where: str) -> ModelBundle:
        """Parse :meth:`to_json` output (``where`` names the source in errors)."""
        if raw.get("format") != BUNDLE_FORMAT:
            raise ValueError(f"{where}: bundle format {raw.get('format')!r} is not {BUNDLE_FORMAT}")
        cov = raw.get("covisit")
        sasrec = raw.get("sasrec")
        bundle = cls(
            two_tower=str(raw["two_tower"]),
            ranker=str(raw["ranker"]),
            sasrec=None if sasrec is None else str(sasrec),
            covisit=None if cov is None else CovisitConfig(**cov),
            created_at=str(raw.get("created_at", "")),
        )
        if raw.get("bundle_id") != bundle.bundle_id:
            raise BundleMismatchError(
                f"{where}: bundle_id {raw.get('bundle_id')!r} does not name its members "
                f"({bundle.bundle_id!r})"
            )
        return bundle

    @classmethod
    def load(cls, root: Path, bundle_id: str | None = None) -> ModelBundle:
        """The one loader: bundle ``bundle_id``, or the serving bundle when None; checked.

        With ``bundle_id``: ``bundles/<bundle_id>.json``, else (a ranker from before bundle
        files) the bundle its ranker records, which must have that id. Without: the champion
        (:func:`read_bundle_champion`), else the bundle of the per-model ranker champion (a
        warehouse from before bundles), else, before any promotion (first run), the newest
        bundle (:meth:`latest`).

        Raises:
            FileNotFoundError: no such bundle, or a member's artifact is missing.
            BundleMismatchError: the ranker was trained with other models than the bundle pairs.
            ValueError: a malformed bundle id.
        """
        if bundle_id is None:
            champion = champion_bundle(root)
            if champion is not None:
                champion[0].check(root)
                return champion[0]
            bundle = cls.latest(root)
            log.info("no champion bundle recorded, using the newest %s", bundle.bundle_id)
            return bundle
        bundle = _read_bundle(root, bundle_id)
        bundle.check(root)
        return bundle

    @classmethod
    def latest(cls, root: Path) -> ModelBundle:
        """The bundle of the newest ranker artifact (its file, else derived), checked.

        Raises:
            FileNotFoundError: there is no ranker artifact under ``root``.
        """
        ranker = latest_artifact(root, "ranker")
        if ranker is None:
            raise FileNotFoundError(f"no ranker artifact under {str(root)!r}: no model bundle")
        return cls.load(root, cls.from_ranker(root, ranker).bundle_id)


@dataclass(frozen=True, slots=True)
class BundleChampion:
    """The serving bundle and the decision that made it so.

    Attributes:
        bundle_id: :attr:`ModelBundle.bundle_id` of the champion.
        ndcg_at_10: Offline NDCG@10 of its ``two_tower+ranker`` pipeline at the decision, [0, 1].
        decided_at: When it was promoted, UTC ISO-8601.
        reason: One line on why.
    """

    bundle_id: str
    ndcg_at_10: float
    decided_at: str
    reason: str


def read_bundle_champion(root: Path) -> BundleChampion | None:
    """The recorded champion bundle under ``root``; None when none was promoted."""
    path = root / BUNDLES_DIR / CHAMPION_FILE
    if not path.is_file():
        return None
    raw = json.loads(path.read_text(encoding="utf-8"))
    return BundleChampion(
        bundle_id=check_bundle_id(str(path), str(raw["bundle_id"])),
        ndcg_at_10=float(raw["ndcg_at_10"]),
        decided_at=str(raw["decided_at"]),
        reason=str(raw["reason"]),
    )


def set_bundle_champion(
    root: Path, bundle: ModelBundle, ndcg_at_10: float, reason: str
) -> BundleChampion:
    """Record ``bundle`` as the serving bundle (checked, saved, pointer replaced atomically)."""
    bundle.save(root)
    champion = BundleChampion(
        bundle_id=bundle.bundle_id,
        ndcg_at_10=float(ndcg_at_10),
        decided_at=datetime.now(UTC).isoformat(timespec="seconds"),
        reason=reason,
    )
    write_json_atomic(root / BUNDLES_DIR / CHAMPION_FILE, dataclasses.asdict(champion))
    return champion


def champion_bundle(root: Path) -> tuple[ModelBundle, float] | None:
    """The serving bundle and its NDCG@10 at promotion, unchecked; None before any promotion.

    The bundle pointer when there is one; else, for a warehouse from before bundles, the bundle
    the per-model ranker champion was trained in (never the per-model two-tower or SASRec
    champions, which may come from other trainings).
    """
    pointer = read_bundle_champion(root)
    if pointer is not None:
        return _read_bundle(root, pointer.bundle_id), pointer.ndcg_at_10
    ranker = read_champion(root, "ranker")
    if ranker is None:
        return None
    log.info("no champion bundle recorded: using the bundle of ranker champion %s", ranker.version)
    return ModelBundle.from_ranker(root, ranker.version), ranker.ndcg_at_10


def resolve_bundle(
    root: Path,
    bundle_id: str | None = None,
    *,
    two_tower: str | None = None,
    sasrec: str | None = None,
    ranker: str | None = None,
) -> ModelBundle:
    """The bundle to serve, with optional pinned versions checked against it.

    ``bundle_id`` names the bundle; else a pinned ``ranker`` selects the bundle it was trained
    in; else the champion (:meth:`ModelBundle.load`). Every pinned version must then be that
    bundle's.

    Raises:
        BundleMismatchError: a pinned version is not the bundle's.
        FileNotFoundError: no bundle, or a member's artifact is missing.
    """
    if bundle_id is None and ranker is not None:
        bundle = ModelBundle.load(root, ModelBundle.from_ranker(root, ranker).bundle_id)
    else:
        bundle = ModelBundle.load(root, bundle_id)
    pinned = {"two_tower": two_tower, "sasrec": sasrec, "ranker": ranker}
    for name, version in pinned.items():
        if version is not None and version != bundle.version_of(name):
            raise BundleMismatchError(
                f"{name}_version: {version!r} is not the {name} of bundle {bundle.bundle_id} "
                f"({bundle.version_of(name)!r}); models serve only in the bundle they were "
                "trained in: pin --bundle or the ranker instead"
            )
    return bundle


def _read_bundle(root: Path, bundle_id: str) -> ModelBundle:
    """``bundles/<bundle_id>.json``, else the bundle its ranker records (which must have that
    id); not checked against the artifacts."""
    check_bundle_id("bundle_id", bundle_id)
    path = root / BUNDLES_DIR / (bundle_id + ".json")
    if path.is_file():
        return ModelBundle.from_json(json.loads(path.read_text(encoding="utf-8")), str(path))
    bundle = ModelBundle.from_ranker(root, bundle_id.rpartition("+")[2])
    if bundle.bundle_id != bundle_id:
        raise BundleMismatchError(
            f"bundle_id: {bundle_id!r} pairs ranker {bundle.ranker} with models it was not "
            f"trained with (it was trained in {bundle.bundle_id!r})"
        )
    return bundle


def _stamp_iso(version: str) -> str:
    """ISO-8601 of the ``YYYYmmddTHHMMSSZ`` prefix of an artifact version ('' when absent)."""
    try:
        stamp = datetime.strptime(version[:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return ""
    return stamp.isoformat(timespec="seconds")
