"""jobs.score end to end on the tiny feature set with tiny trained models."""

from __future__ import annotations

import json
import logging
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import functions as F

from jobs.score import ScoreJobConfig, main, parse_args, run
from jobs.train import parse_args as parse_train
from jobs.train import run as run_train
from recsys.training.artifacts import (
    COVISIT_CONFIG,
    SEQUENCER_VERSION,
    latest_artifact,
)
from recsys.training.bundle import BUNDLES_DIR, ModelBundle, RankerInputs, set_bundle_champion
from recsys.training.registry import CHAMPION_FILE
from recsys.warehouse.io import append
from recsys.warehouse.tables import (
    FEATURES_INTERACTIONS_SPLIT,
    SERVE_CANDIDATES,
    SERVE_ITEM_EMBEDDINGS,
    SERVE_RANKED,
    SERVE_RECOMMENDATIONS,
    SERVE_RECOMMENDATIONS_LATEST,
    SERVE_USER_EMBEDDINGS,
    Col,
    RecSet,
)
from tests.helpers.artifacts import fake_artifact
from tests.helpers.tiny_features import write_tiny_features

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from recsys.settings import WarehouseSettings

DS = date(2026, 3, 1)
COLD_USER = 999


def test_bad_arguments_exit_2_before_spark() -> None:
    assert main(["rank", "--ds", "2026-03-01", "--n", "0"]) == 2
    assert main(["retrieve", "--ds", "2026-03-01", "--k", "5", "--n", "6"]) == 2
    assert main(["all", "--split-id", "no way"]) == 2
    assert main(["publish", "--run-id", "a b"]) == 2
    # The checks run between rank and publish: requiring them only makes sense for publish.
    assert main(["all", "--ds", "2026-03-01", "--require-dq"]) == 2
    assert main(["rank", "--ds", "2026-03-01", "--require-dq"]) == 2
    with pytest.raises(SystemExit) as exc:
        main(["bogus"])
    assert exc.value.code == 2
    assert main(["retrieve-rank", "--ds", "2026-03-01", "--candidates-sample", "-1"]) == 2
    config = parse_args(["all", "--ds", "2026-03-01"])
    assert config.steps == ("embeddings", "retrieve-rank", "publish")
    assert config.candidates_sample == 1_000
    assert parse_args(["retrieve-rank", "--candidates-sample", "0"]).candidates_sample == 0
    assert len(config.run_id) == 36
    airflow_run = "manual__2026-01-05T00:00:00.123456+00:00"  # what the DAG passes
    assert parse_args(["publish", "--run-id", airflow_run]).run_id == airflow_run


def _day(spark: SparkSession, table: object) -> DataFrame:
    return spark.table(str(table)).where(F.col(Col.DS) == F.lit(DS))


@pytest.fixture(scope="module")
def tiny_models(
    spark: SparkSession,
    warehouse_settings: WarehouseSettings,
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    """Tiny features of DS (plus a user with only a validation interaction: no features, so
    fallback candidates) and a two-tower, SASRec and ranker trained on them; the artifacts
    directory."""
    root = warehouse_settings.warehouse_root
    write_tiny_features(spark, DS)
    cold = (
        spark.table(FEATURES_INTERACTIONS_SPLIT.qualified_name)
        .where((F.col(Col.DS) == F.lit(DS)) & (F.col(Col.USER_ID) == 1))
        .limit(1)
        .withColumn(Col.USER_ID, F.lit(COLD_USER).cast("long"))
        .withColumn(Col.ROLE, F.lit("validation"))
        .withColumn(Col.ITEM_ID, F.lit(1).cast("long"))
        .withColumn(Col.EVENT_TS, F.lit(datetime(2020, 3, 1, tzinfo=UTC)))
    )
    append(cold, FEATURES_INTERACTIONS_SPLIT)
    arts = tmp_path_factory.mktemp("score") / "models"
    for name in ("two_tower", "sasrec", "ranker"):
        args = ["--model", name, "--ds", DS.isoformat(), "--epochs", "1", "--batch-size", "16"]
        run_train(parse_train([*args, "--artifacts-dir", str(arts)]), root)
    return arts


@pytest.mark.spark
@pytest.mark.slow
def test_score_all_steps_on_tiny_data(
    spark: SparkSession, warehouse_settings: WarehouseSettings, tiny_models: Path
) -> None:
    root = warehouse_settings.warehouse_root
    arts = tiny_models
    sasrec, ranker = latest_artifact(arts, "sasrec"), latest_artifact(arts, "ranker")
    assert sasrec is not None
    assert ranker is not None
    assert ranker.extra[SEQUENCER_VERSION] == sasrec.version  # the default ranker reads SASRec
    assert ranker.extra[COVISIT_CONFIG]["window"] >= 1  # and co-visitation

    # `all` runs the fused step; the default candidates sample (1,000 users) holds all 41.
    config = ScoreJobConfig("all", DS, run_id="run-1", artifacts_dir=arts, k=20, n=5)
    assert config.steps == ("embeddings", "retrieve-rank", "publish")
    counts = run(config, root)
    assert counts[str(SERVE_ITEM_EMBEDDINGS)] == 30
    assert counts[str(SERVE_USER_EMBEDDINGS)] == 40
    assert counts[str(SERVE_CANDIDATES)] == _day(spark, SERVE_CANDIDATES).count() > 0

    cands: pd.DataFrame = _day(spark, SERVE_CANDIDATES).toPandas()
    assert set(cands[Col.SOURCE]) == {"two_tower", "sasrec", "popular_genre"}
    assert not cands.duplicated([Col.USER_ID, Col.ITEM_ID]).any()
    seen = (
        spark.table(FEATURES_INTERACTIONS_SPLIT.qualified_name)
        .where((F.col(Col.DS) == F.lit(DS)) & F.col(Col.ROLE).isin("train", "validation"))
        .select(Col.USER_ID, Col.ITEM_ID)
        .toPandas()
    )
    pairs = set(zip(seen[Col.USER_ID], seen[Col.ITEM_ID], strict=True))
    assert not pairs & set(zip(cands[Col.USER_ID], cands[Col.ITEM_ID], strict=True))
    cold_rows = cands[cands[Col.USER_ID] == COLD_USER]
    assert len(cold_rows) == 20
    assert set(cold_rows[Col.SOURCE]) == {"popular_genre"}
    assert 1 not in set(cold_rows[Col.ITEM_ID])

    ranked: pd.DataFrame = _day(spark, SERVE_RANKED).toPandas()
    assert set(ranked[Col.REC_SET]) == {RecSet.MODEL, RecSet.POPULARITY}
    assert ranked[Col.USER_ID].nunique() == 41
    per = ranked.groupby([Col.REC_SET, Col.USER_ID])[Col.RANK].agg(list)
    assert all(r == list(range(1, 6)) for r in per.map(sorted))
    model_rows: pd.DataFrame = ranked[ranked[Col.REC_SET] == RecSet.MODEL]
    assert set(model_rows[Col.MODEL_VERSION].str.split("+").map(lambda v: v[1])) == {sasrec.version}
    # What served is the bundle training wrote (nothing promoted: the newest), named by its id.
    assert set(model_rows[Col.MODEL_VERSION]) == {ModelBundle.latest(arts).bundle_id}
    assert model_rows[Col.SCORE].between(0, 1).all()
    warm: pd.DataFrame = model_rows[model_rows[Col.SOURCE].isin(["two_tower", "sasrec"])]
    # "item <id>" only while no test of the session has delivered titles to bronze.items for
    # these ids (the titles come from the newest delivery): the prefix is what is fixed.
    assert warm[Col.EXPLANATION].str.startswith("Because you watched ").all()
    others = ranked[~ranked.index.isin(warm.index)]
    assert others[Col.EXPLANATION].str.match(r"^Popular (in \w+|right now)$").all()
    assert set(ranked[Col.RUN_ID]) == {"run-1"}

    recs = _day(spark, SERVE_RECOMMENDATIONS)
    assert recs.count() == len(ranked)
    history = spark.sql(f"DESCRIBE HISTORY {SERVE_RECOMMENDATIONS.qualified_name}").count()
    before = sorted(map(tuple, recs.toPandas().astype(str).values.tolist()))
    assert main(["publish", "--ds", DS.isoformat(), "--artifacts-dir", str(arts)]) == 0
    again = _day(spark, SERVE_RECOMMENDATIONS)
    assert sorted(map(tuple, again.toPandas().astype(str).values.tolist())) == before
    assert (
        spark.sql(f"DESCRIBE HISTORY {SERVE_RECOMMENDATIONS.qualified_name}").count() == history + 1
    )
    # Other tests of the session may have published later days: the view shows the newest one.
    latest = (
        spark.table(SERVE_RECOMMENDATIONS_LATEST.qualified_name)
        .agg(F.min(Col.DS), F.max(Col.DS))
        .first()
    )
    newest = spark.table(SERVE_RECOMMENDATIONS.qualified_name).agg(F.max(Col.DS)).first()
    assert latest is not None
    assert newest is not None
    assert latest[0] == latest[1] == newest[0] >= DS


def _rows(df: DataFrame, keys: list[str]) -> pd.DataFrame:
    out: pd.DataFrame = df.drop(Col.RUN_ID).toPandas()
    return out.sort_values(keys, kind="stable").reset_index(drop=True)


@pytest.mark.spark
@pytest.mark.slow
def test_fused_scoring_equals_two_steps(
    spark: SparkSession, warehouse_settings: WarehouseSettings, tiny_models: Path
) -> None:
    """The agreement test of the fused path: ``retrieve-rank`` writes to ``serve.ranked`` what
    ``retrieve`` then ``rank`` write (same users, items, order, sources, explanations, versions;
    scores to float rounding), and its ``serve.candidates`` sample is the two-step candidates of
    the sampled users."""
    root = warehouse_settings.warehouse_root

    def config(command: str, run_id: str, sample: int = 1_000) -> ScoreJobConfig:
        return ScoreJobConfig(
            command, DS, run_id=run_id, artifacts_dir=tiny_models, k=20, n=5,
            candidates_sample=sample,
        )  # fmt: skip

    run(config("embeddings", "emb"), root)
    for step in ("retrieve", "rank"):
        run(config(step, "two-step"), root)
    ranked_keys = [Col.REC_SET, Col.USER_ID, Col.RANK]
    cand_keys = [Col.USER_ID, Col.ITEM_ID]
    two_ranked = _rows(_day(spark, SERVE_RANKED), ranked_keys)
    two_cands = _rows(_day(spark, SERVE_CANDIDATES), cand_keys)

    fused = config("retrieve-rank", "fused", 7)
    counts = run(fused, root)
    ranked = _rows(_day(spark, SERVE_RANKED), ranked_keys)
    cands = _rows(_day(spark, SERVE_CANDIDATES), cand_keys)
    assert set(_day(spark, SERVE_RANKED).toPandas()[Col.RUN_ID]) == {"fused"}

    assert len(ranked) == len(two_ranked) > 0
    assert counts[str(SERVE_RANKED)] == len(ranked)
    assert ranked[Col.USER_ID].nunique() == 41  # the cold user included
    for col in ranked.columns:
        if col != Col.SCORE:
            assert ranked[col].tolist() == two_ranked[col].tolist(), col
    np.testing.assert_allclose(ranked[Col.SCORE], two_ranked[Col.SCORE], rtol=1e-5, atol=1e-6)

    # The sample: 7 users of the seeded hash sample, each with all of its two-step candidates.
    assert cands[Col.USER_ID].nunique() == 7
    sampled = two_cands[two_cands[Col.USER_ID].isin(set(cands[Col.USER_ID]))]
    sampled = sampled.reset_index(drop=True)
    assert len(cands) == len(sampled)
    for col in cands.columns:
        if col != Col.RETRIEVAL_SCORE:
            assert cands[col].tolist() == sampled[col].tolist(), col
    np.testing.assert_allclose(cands[Col.RETRIEVAL_SCORE], sampled[Col.RETRIEVAL_SCORE], atol=1e-5)
    # The same seed draws the same users again; 0 leaves the day without candidates.
    run(fused, root)
    again = _rows(_day(spark, SERVE_CANDIDATES), cand_keys)
    assert set(again[Col.USER_ID]) == set(cands[Col.USER_ID])
    assert run(config("retrieve-rank", "fused", 0), root)[str(SERVE_CANDIDATES)] == 0
    assert _day(spark, SERVE_RANKED).count() == len(ranked)


@pytest.mark.spark
def test_score_refuses_a_mismatched_pair(
    spark: SparkSession,
    warehouse_settings: WarehouseSettings,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A pinned version or a hand-edited pointer that pairs a ranker with another two-tower than
    it was trained with: exit 2 before any step writes."""
    day = date(2031, 6, 1)
    tt1 = fake_artifact(tmp_path, "two_tower", 1)
    rk1 = fake_artifact(tmp_path, "ranker", 2, RankerInputs(tt1))
    tt2 = fake_artifact(tmp_path, "two_tower", 3)
    rk2 = fake_artifact(tmp_path, "ranker", 4, RankerInputs(tt2))
    set_bundle_champion(tmp_path, ModelBundle.from_ranker(tmp_path, rk1), 0.03, "gate")
    base = ["embeddings", "--ds", day.isoformat(), "--artifacts-dir", str(tmp_path)]
    caplog.set_level(logging.ERROR, logger="jobs.score")
    assert main([*base, "--two-tower-version", tt2]) == 2
    assert f"two_tower_version: {tt2!r} is not the two_tower of bundle {tt1}+{rk1}" in caplog.text
    caplog.clear()
    assert main([*base, "--ranker-version", rk1, "--two-tower-version", tt2]) == 2
    assert "is not the two_tower of bundle" in caplog.text
    caplog.clear()
    assert main([*base, "--bundle", f"{tt2}+{rk1}"]) == 2
    assert "not trained with" in caplog.text
    caplog.clear()
    pointer = tmp_path / BUNDLES_DIR / CHAMPION_FILE
    raw = json.loads(pointer.read_text())
    pointer.write_text(json.dumps({**raw, "bundle_id": f"{tt1}+{rk2}"}))  # hand-edited
    assert main(base) == 2
    assert "not trained with" in caplog.text
    written = spark.table(SERVE_ITEM_EMBEDDINGS.qualified_name).where(F.col(Col.DS) == F.lit(day))
    assert written.count() == 0
