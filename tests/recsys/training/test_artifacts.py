from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import torch

from recsys.training.artifacts import (
    Artifact,
    FeatureSpecMismatchError,
    check_feature_spec,
    latest_artifact,
    read_artifact,
    save_artifact,
)

SPEC = {"n_items": 10, "genres": ["Action", "Drama"], "content_dim": 384}


def save(root: Path, weight: float, when: datetime) -> Artifact:
    model = torch.nn.Linear(2, 1)
    with torch.no_grad():
        model.weight.fill_(weight)
    return save_artifact(
        root,
        "ranker",
        model.state_dict(),
        config={"dim": 2},
        feature_spec=SPEC,
        metrics={"ndcg@10": 0.1},
        data_versions={"features.item_features": 3},
        now=when,
    )


def test_round_trip_and_latest(tmp_path: Path) -> None:
    first = save(tmp_path, 1.0, datetime(2026, 1, 1, tzinfo=UTC))
    second = save(tmp_path, 2.0, datetime(2026, 1, 2, tzinfo=UTC))
    latest = latest_artifact(tmp_path, "ranker")
    assert latest is not None
    assert latest.version == second.version
    assert latest.version.startswith("20260102T000000Z-")
    assert first.version != second.version
    state = latest.load_state_dict()
    assert torch.equal(state["weight"], torch.full((1, 2), 2.0))
    assert latest.data_versions == {"features.item_features": 3}
    assert read_artifact(latest.path).metrics == {"ndcg@10": 0.1}
    assert latest_artifact(tmp_path, "sasrec") is None


def test_weights_only_refuses_pickled_code(tmp_path: Path) -> None:
    art = save(tmp_path, 1.0, datetime(2026, 1, 1, tzinfo=UTC))
    torch.save({"weight": torch.zeros(1), "evil": print}, art.path / "weights.pt")
    with pytest.raises(Exception, match=r"(?i)weights_only|unsupported|global"):
        read_artifact(art.path).load_state_dict()


def test_feature_spec_mismatch_is_refused(tmp_path: Path) -> None:
    art = read_artifact(save(tmp_path, 1.0, datetime(2026, 1, 1, tzinfo=UTC)).path)
    check_feature_spec(art, dict(SPEC))
    with pytest.raises(FeatureSpecMismatchError, match="n_items: artifact 10 vs tables 11"):
        check_feature_spec(art, {**SPEC, "n_items": 11})
    with pytest.raises(FeatureSpecMismatchError, match="content_dim"):
        check_feature_spec(art, {k: v for k, v in SPEC.items() if k != "content_dim"})


def test_missing_or_foreign_artifacts(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no model artifact"):
        read_artifact(tmp_path)
    art = save(tmp_path, 1.0, datetime(2026, 1, 1, tzinfo=UTC))
    manifest = art.path / "manifest.json"
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "format_version": 99}))
    with pytest.raises(ValueError, match="format_version"):
        read_artifact(art.path)
    with pytest.raises(ValueError, match="model_name"):
        save_artifact(
            tmp_path, "bad name", {}, config={}, feature_spec={}, metrics={}, data_versions={}
        )
