"""Model bundles: one typed, atomically written unit of two-tower + SASRec + ranker + co-visitation,
loaded by one function that refuses a mismatched pair."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from recsys.training.bundle import (
    BUNDLES_DIR,
    BundleMismatchError,
    ModelBundle,
    RankerInputs,
    check_bundle_id,
    read_bundle_champion,
    resolve_bundle,
    set_bundle_champion,
)
from recsys.training.covisit import CovisitConfig
from recsys.training.registry import CHAMPION_FILE, read_champion, set_champion
from tests.helpers.artifacts import fake_artifact


def _trained(root: Path, second: int, covisit: CovisitConfig | None = None) -> ModelBundle:
    """A two-tower, a SASRec and a ranker trained against them; their bundle (not saved)."""
    tt = fake_artifact(root, "two_tower", second)
    sas = fake_artifact(root, "sasrec", second)
    rk = fake_artifact(root, "ranker", second + 1, RankerInputs(tt, sas, covisit))
    return ModelBundle.from_ranker(root, rk)


def test_bundle_roundtrip(tmp_path: Path) -> None:
    bundle = _trained(tmp_path, 1, CovisitConfig(window=5, top_n=7))
    assert bundle.bundle_id == f"{bundle.two_tower}+{bundle.sasrec}+{bundle.ranker}"
    assert bundle.covisit == CovisitConfig(window=5, top_n=7)
    assert bundle.created_at == "2031-01-01T00:00:02+00:00"  # when its ranker was trained
    path = bundle.save(tmp_path)
    assert path == tmp_path / BUNDLES_DIR / (bundle.bundle_id + ".json")
    raw = json.loads(path.read_text())
    assert raw["covisit"]["window"] == 5
    assert raw["bundle_id"] == bundle.bundle_id
    assert ModelBundle.load(tmp_path, bundle.bundle_id) == bundle
    assert ModelBundle.from_json(raw, "x") == bundle
    # Without SASRec and co-visitation the id has two parts.
    tt = fake_artifact(tmp_path, "two_tower", 9)
    rk = fake_artifact(tmp_path, "ranker", 10, RankerInputs(tt))
    small = ModelBundle.from_ranker(tmp_path, rk)
    assert small.bundle_id == f"{tt}+{rk}"
    assert (small.sasrec, small.covisit) == (None, None)
    small.save(tmp_path)
    assert ModelBundle.load(tmp_path, small.bundle_id) == small
    with pytest.raises(FileNotFoundError, match="has no sasrec"):
        small.artifact(tmp_path, "sasrec")
    # A ranker from before bundle files: its bundle is derived from what it records.
    tt3 = fake_artifact(tmp_path, "two_tower", 20)
    rk3 = fake_artifact(tmp_path, "ranker", 21, RankerInputs(tt3))
    assert ModelBundle.load(tmp_path, f"{tt3}+{rk3}").ranker == rk3


def test_bundle_and_pointer_writes_are_atomic(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _trained(tmp_path, 1)
    set_bundle_champion(tmp_path, first, 0.03, "first")
    pointer = tmp_path / BUNDLES_DIR / CHAMPION_FILE
    before = pointer.read_bytes()
    second = _trained(tmp_path, 3)
    real_replace = os.replace

    def crash(src: str, dst: str) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk gone"):
        set_bundle_champion(tmp_path, second, 0.04, "second")  # crashes writing the bundle file
    assert not (tmp_path / BUNDLES_DIR / (second.bundle_id + ".json")).exists()

    def crash_pointer(src: str, dst: str) -> None:
        if Path(dst).name == CHAMPION_FILE:
            raise OSError("disk gone")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", crash_pointer)
    with pytest.raises(OSError, match="disk gone"):
        set_bundle_champion(tmp_path, second, 0.04, "second")  # crashes moving the pointer
    monkeypatch.setattr(os, "replace", real_replace)
    # The old pointer is intact and no temp file stays behind.
    assert pointer.read_bytes() == before
    assert ModelBundle.load(tmp_path, second.bundle_id) == second
    assert [p.name for p in (tmp_path / BUNDLES_DIR).iterdir() if p.name.startswith(".")] == []
    champion = read_bundle_champion(tmp_path)
    assert champion is not None
    assert (champion.bundle_id, champion.ndcg_at_10) == (first.bundle_id, 0.03)
    assert ModelBundle.load(tmp_path) == first


def test_load_without_id_champion_then_legacy_then_newest(tmp_path: Path) -> None:
    old = _trained(tmp_path, 1)
    new = _trained(tmp_path, 3)
    # First run, nothing promoted: the newest bundle.
    assert ModelBundle.load(tmp_path) == new
    # A warehouse from before bundles: per-model pointers, the two-tower champion from another
    # training than the ranker champion. The ranker's pair serves, not the two-tower champion.
    set_champion(tmp_path, new.artifact(tmp_path, "two_tower"), 0.05, "legacy")
    set_champion(tmp_path, old.artifact(tmp_path, "ranker"), 0.04, "legacy")
    legacy = ModelBundle.load(tmp_path)
    assert legacy.bundle_id == old.bundle_id
    assert legacy.two_tower == old.two_tower != new.two_tower
    # Once a bundle is promoted its pointer wins over the per-model ones.
    set_bundle_champion(tmp_path, new, 0.06, "gate")
    assert ModelBundle.load(tmp_path) == new


def test_mismatched_pairs_are_refused(tmp_path: Path) -> None:
    good = _trained(tmp_path, 1)
    other = _trained(tmp_path, 3)
    set_bundle_champion(tmp_path, good, 0.03, "gate")
    # A hand-edited bundle file: the ranker recorded another two-tower.
    edited = ModelBundle(other.two_tower, good.ranker, good.sasrec)
    path = tmp_path / BUNDLES_DIR / (edited.bundle_id + ".json")
    path.write_text(json.dumps(edited.to_json()))
    with pytest.raises(BundleMismatchError, match="refusing a mismatched pair"):
        ModelBundle.load(tmp_path, edited.bundle_id)
    pointer = tmp_path / BUNDLES_DIR / CHAMPION_FILE
    raw = json.loads(pointer.read_text())
    pointer.write_text(json.dumps({**raw, "bundle_id": edited.bundle_id}))
    with pytest.raises(BundleMismatchError, match="refusing a mismatched pair"):
        ModelBundle.load(tmp_path)
    # A pointer to a pair no bundle file holds: derived from its ranker, which disagrees.
    path.unlink()
    with pytest.raises(BundleMismatchError, match="not trained with"):
        ModelBundle.load(tmp_path)
    # A bundle file whose id does not name its members.
    bad = {**good.to_json(), "two_tower": other.two_tower}
    with pytest.raises(BundleMismatchError, match="does not name its members"):
        ModelBundle.from_json(bad, "hand-edited")
    # A ranker from before recorded versions cannot be paired.
    legacy = fake_artifact(tmp_path, "ranker", 30)
    with pytest.raises(BundleMismatchError, match="records no two-tower version"):
        ModelBundle.from_ranker(tmp_path, legacy)
    with pytest.raises(FileNotFoundError):
        ModelBundle.load(tmp_path, f"{good.two_tower}+nope")


def test_pinned_versions_must_be_the_bundles(tmp_path: Path) -> None:
    good = _trained(tmp_path, 1)
    other = _trained(tmp_path, 3)
    set_bundle_champion(tmp_path, good, 0.03, "gate")
    assert resolve_bundle(tmp_path) == good
    assert resolve_bundle(tmp_path, two_tower=good.two_tower) == good
    with pytest.raises(BundleMismatchError, match="two_tower_version"):
        resolve_bundle(tmp_path, two_tower=other.two_tower)
    with pytest.raises(BundleMismatchError, match="sasrec_version"):
        resolve_bundle(tmp_path, sasrec=other.sasrec)
    # A pinned ranker selects the bundle it was trained in; a pinned two-tower must match it.
    assert resolve_bundle(tmp_path, ranker=other.ranker) == other
    with pytest.raises(BundleMismatchError, match="two_tower_version"):
        resolve_bundle(tmp_path, ranker=other.ranker, two_tower=good.two_tower)
    assert resolve_bundle(tmp_path, other.bundle_id) == other
    with pytest.raises(BundleMismatchError, match="ranker_version"):
        resolve_bundle(tmp_path, other.bundle_id, ranker=good.ranker)
    # Per-model pointers are not what serves: a two-tower champion of another training is unused.
    set_champion(tmp_path, other.artifact(tmp_path, "two_tower"), 0.9, "hand-edited")
    assert read_champion(tmp_path, "two_tower") is not None
    assert resolve_bundle(tmp_path).two_tower == good.two_tower


@pytest.mark.parametrize("value", ["a", "a+b+c+d", "../a+b", "a+b\n", "a+/b", "+a+b", "a++b", ""])
def test_check_bundle_id_refuses(value: str) -> None:
    with pytest.raises(ValueError, match=r"^bundle: expected a bundle id"):
        check_bundle_id("bundle", value)
    assert check_bundle_id("bundle", "20310101T000000Z-abc+20310101T000001Z-def") is not None
