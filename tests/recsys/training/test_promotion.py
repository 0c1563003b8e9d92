"""The promotion gate's decision rule and the champion registry."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import torch

from recsys.settings import PROJECT_ROOT
from recsys.training.artifacts import save_artifact
from recsys.training.promotion import KEPT, PROMOTED, GateInput, decide
from recsys.training.registry import (
    MODELS_DIR,
    artifacts_root,
    read_champion,
    resolve_artifact,
    set_champion,
)


def gate(challenger: float, champion: float | None, margin: float = 0.01) -> GateInput:
    return GateInput(
        model_name="two_tower",
        challenger_version="v2",
        challenger_ndcg=challenger,
        champion_version=None if champion is None else "v1",
        champion_ndcg=champion,
        margin=margin,
    )


def test_first_model_is_promoted() -> None:
    d = decide(gate(0.03, None))
    assert d.decision == PROMOTED
    assert d.serving_version == "v2"
    assert "no champion" in d.reason


@pytest.mark.parametrize(
    ("challenger", "champion", "expected"),
    [
        (0.050, 0.050, PROMOTED),  # equal
        (0.041, 0.050, PROMOTED),  # worse by 0.009 < margin 0.01
        (0.040, 0.050, PROMOTED),  # worse by exactly the margin
        (0.039, 0.050, KEPT),  # worse by 0.011 > margin
        (0.080, 0.050, PROMOTED),  # better
    ],
)
def test_margin_boundary(challenger: float, champion: float, expected: str) -> None:
    d = decide(gate(challenger, champion))
    assert d.decision == expected
    assert d.serving_version == ("v2" if expected == PROMOTED else "v1")


def test_kept_champion_says_why() -> None:
    d = decide(gate(0.02, 0.05))
    assert "worse by 0.0300 > margin" in d.reason
    assert "champion stays" in d.reason


def test_same_version_is_kept() -> None:
    g = GateInput("sasrec", "v1", 0.05, "v1", 0.05, 0.0)
    assert decide(g).decision == KEPT


@pytest.mark.parametrize(
    ("kwargs", "arg"),
    [
        ({"margin": -0.1}, "margin"),
        ({"margin": float("nan")}, "margin"),
        ({"challenger_ndcg": 1.5}, "challenger_ndcg"),
        ({"champion_ndcg": None}, "champion_ndcg"),
    ],
)
def test_invalid_inputs_name_the_argument(kwargs: dict[str, object], arg: str) -> None:
    base: dict[str, object] = {
        "model_name": "m",
        "challenger_version": "v2",
        "challenger_ndcg": 0.1,
        "champion_version": "v1",
        "champion_ndcg": 0.1,
        "margin": 0.0,
    }
    with pytest.raises(ValueError, match=arg):
        GateInput(**{**base, **kwargs})  # type: ignore[arg-type]


def _artifact(root: Path, second: int, value: float) -> str:
    art = save_artifact(
        root,
        "two_tower",
        {"w": torch.full((2,), value)},
        config={},
        feature_spec={},
        metrics={},
        data_versions={},
        now=datetime(2026, 1, 1, 0, 0, second, tzinfo=UTC),
    )
    return art.version


def test_registry_resolves_explicit_then_champion_then_latest(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="two_tower"):
        resolve_artifact(tmp_path, "two_tower")
    old = _artifact(tmp_path, 1, 1.0)
    new = _artifact(tmp_path, 2, 2.0)
    assert resolve_artifact(tmp_path, "two_tower").version == new  # no champion: latest
    champion = set_champion(tmp_path, resolve_artifact(tmp_path, "two_tower", old), 0.04, "test")
    assert read_champion(tmp_path, "two_tower") == champion
    assert resolve_artifact(tmp_path, "two_tower").version == old  # champion wins over latest
    assert resolve_artifact(tmp_path, "two_tower", new).version == new  # explicit wins
    # The pointer file is not mistaken for an artifact directory.
    assert sorted(p.name for p in (tmp_path / "two_tower").iterdir() if p.is_dir()) == [old, new]


def test_artifacts_root_explicit_then_beside_a_local_warehouse(tmp_path: Path) -> None:
    assert artifacts_root(tmp_path, "s3://bucket/wh") == tmp_path
    assert artifacts_root(None, "/data/wh") == Path("/data/wh") / MODELS_DIR
    assert artifacts_root(None, "file:///data/wh") == Path("/data/wh") / MODELS_DIR
    with pytest.raises(ValueError, match=r"artifacts_dir: .*warehouse_root='s3://bucket/wh'"):
        artifacts_root(None, "s3://bucket/wh")


def test_the_gate_job_imports_no_torch() -> None:
    # The gate reads manifests only; importing the training stack cost it ≈ 2 s per run.
    code = "import sys, jobs.promote; print(sorted({'torch', 'jobs.train'} & set(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
