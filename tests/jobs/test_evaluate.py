"""jobs.evaluate's model resolution: it judges one model bundle, the pair that would serve."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs.evaluate import _member, challenger_bundle, parse_args
from recsys.training.bundle import BundleMismatchError, RankerInputs
from tests.helpers.artifacts import fake_artifact


def test_the_pipeline_is_judged_with_the_rankers_own_two_tower(tmp_path: Path) -> None:
    assert challenger_bundle(tmp_path, None) is None  # nothing trained: no bundle
    tt1 = fake_artifact(tmp_path, "two_tower", 1)
    sas1 = fake_artifact(tmp_path, "sasrec", 1)
    rk1 = fake_artifact(tmp_path, "ranker", 2, RankerInputs(tt1, sas1))
    # Newer two-tower and SASRec trained after the ranker: not the ranker's inputs.
    tt2 = fake_artifact(tmp_path, "two_tower", 3)
    fake_artifact(tmp_path, "sasrec", 3)
    bundle = challenger_bundle(tmp_path, None)
    assert bundle is not None
    assert bundle.bundle_id == f"{tt1}+{sas1}+{rk1}"
    assert _member(tmp_path, bundle, "two_tower").version == tt1
    assert _member(tmp_path, bundle, "sasrec").version == sas1
    # Before any ranker, or for a member the bundle lacks, the latest artifact is judged.
    assert _member(tmp_path, None, "two_tower").version == tt2
    rk2 = fake_artifact(tmp_path, "ranker", 4, RankerInputs(tt2))
    newest = challenger_bundle(tmp_path, None)
    assert newest is not None
    assert newest.bundle_id == f"{tt2}+{rk2}"
    assert _member(tmp_path, newest, "sasrec").version != sas1
    # An explicit bundle is judged as named, and refused when it is not a trained pair.
    named = challenger_bundle(tmp_path, f"{tt1}+{sas1}+{rk1}")
    assert named == bundle
    with pytest.raises(BundleMismatchError):
        challenger_bundle(tmp_path, f"{tt2}+{sas1}+{rk1}")


def test_bundle_argument_is_validated() -> None:
    assert parse_args(["--ds", "2031-01-01", "--bundle", "a-1+b-2"]).bundle == "a-1+b-2"
    with pytest.raises(ValueError, match=r"^bundle: expected a bundle id"):
        parse_args(["--ds", "2031-01-01", "--bundle", "a-1"])
