"""# recsys_daily

The daily recommendation pipeline on the Delta warehouse, one `spark-submit` of `jobs/` per step:

| task | job | what it does |
|---|---|---|
| `setup_warehouse` | `setup_warehouse.py` | creates missing tables, checks declared schemas |
| `ingest` | `ingest.py` | one MovieLens delivery into bronze, bad lines quarantined |
| `features` | `features.py` | split, user/item features, ranker examples, co-visitation (*) |
| `trending` | `trending.py` | trending overall and per genre (cold-start fallback) |
| `should_train` | (Python) | train today? `force_retrain`, else every `train_every_days` days |
| `train_two_tower`, `train_sasrec`, `train_ranker` | `train.py` | new artifacts (challengers) |
| `evaluate` | `evaluate.py` | full-ranking offline metrics into `eval.offline_metrics` |
| `promote` | `promote.py` | champion/challenger gate on NDCG@10 (`promotion_margin`) |
| `embeddings` | `score.py embeddings` | item and user embeddings of the champion two-tower |
| `related_items` | `related_items.py` | top-50 similar items per item |
| `scoring` | `score.py retrieve-rank` | candidates + ranker top-50 in one pass, staged |
| `data_quality` | `dq_checks.py` | the STAGED day (`serve.ranked`); fails loudly, no retry |
| `publish` | `score.py publish` | after DQ passed: `serve.recommendations` in ONE commit |

`scoring` retrieves (top-200 per source: two-tower, SASRec, fallbacks), merges and ranks each
batch of users in one `mapInArrow` and writes only the ranker top-50 with explanations and the
popularity set; `serve.candidates` gets the candidates of a 1,000-user seeded sample only
(`jobs/score.py --candidates-sample`, docs/scale.md).

On days `should_train` says no, the three training tasks, `evaluate` and `promote` are
**skipped** and scoring uses the current champions (`embeddings` runs when its upstream tasks
succeeded or were skipped). The gate keeps the champion when the challenger's NDCG@10 is worse
by more than the margin, and its log line and `ops.model_decisions` say why. (*) `features` then
leaves `features.covisit` alone (`--no-covisit`, decided by the same `is_training_day`): its
cost grows with interactions × window, and serving reads the newest stored matrix, the one the
champion ranker was trained with.

**Data quality gates publishing.** `data_quality` checks the staged day (`serve.ranked`, plus
today's related items and trending) BEFORE anything goes live; `publish` runs only when it
passed, and refuses by itself (`--require-dq`) unless `ops.dq_checks` holds this run's passing
checks. A failed check leaves `serve.recommendations` as it was, emits no Asset event, and is not
retried (`retries=0`: a failed check is an alarm, not a transient error); fix the cause, then
clear `data_quality` (its downstream `publish` follows).

`publish` emits the Asset `delta://warehouse/serve/recommendations`
(`dags.common.RECSYS_DAILY_OUTPUT`) with `extra = {"ds", "source"}`; `experiment_analysis` is
scheduled on it. Its last write is the day's completion record (`ops.completed_runs`, pipeline
`recsys_daily`); `ingest` writes its own (pipeline `ingest`). See docs/reliability-pipeline.md.

**Params** (JSON schema, checked when a run is triggered): `input_path` (a MovieLens directory,
default the bundled `data/ml-latest-small`), `source` (delivery name), `force_retrain` (bool),
`train_every_days` (1 = daily), `train_epochs` (0 = each model's default; small values for
demos), `train_users` (0 = every user; else the two-tower and SASRec training sample),
`eval_models` (comma list for `jobs/evaluate.py --models`), `promotion_margin` (allowed
NDCG@10 drop), `content_embeddings` (false skips the sentence encoder: zeros). `ds` is the run's
logical date; every task is idempotent by `ds`, so reruns and backfills replace, never duplicate.

**Running it** (throw-away metadata DB; Spark connection as in `dags/common.py`):

```bash
export AIRFLOW_HOME=$(mktemp -d) AIRFLOW__CORE__LOAD_EXAMPLES=False AIRFLOW__CORE__PARALLELISM=2 \
  AIRFLOW__CORE__DAGS_FOLDER=$PWD/dags PYTHONPATH=$PWD \
  AIRFLOW_CONN_SPARK_LOCAL='{"conn_type": "spark", "host": "local[*]"}'
.venv/bin/airflow db migrate && .venv/bin/airflow dags test recsys_daily 2026-01-05 \
  -c '{"force_retrain": true, "train_epochs": 3}'
```

Retries: 2 per task, exponential backoff from 1 minute (`data_quality`: none); a failure logs one
`TASK FAILED` line.
"""

from __future__ import annotations

import logging
import sys
from datetime import date
from pathlib import Path

from airflow.sdk import DAG, Param, TriggerRule, get_current_context, task

try:
    from dags import common
except ModuleNotFoundError:  # parsed by Airflow without the repository on sys.path
    sys.path.append(str(Path(__file__).resolve().parents[1]))
    from dags import common

log = logging.getLogger("recsys.dags.recsys_daily")

#: Day 0 of the training cadence: with ``train_every_days = n`` training runs on days d with
#: ``(d - CADENCE_EPOCH).days % n == 0`` (a pure function of ds, so backfills decide the same).
CADENCE_EPOCH = date(2026, 1, 1)


def is_training_day(ds: str, every_days: int, force: bool) -> bool:
    """Train on ``ds``? Forced, or on the cadence counted from :data:`CADENCE_EPOCH`.

    Raises:
        ValueError: ``every_days`` < 1.
    """
    if every_days < 1:
        raise ValueError(f"train_every_days: expected >= 1, got {every_days!r}")
    return force or (date.fromisoformat(ds) - CADENCE_EPOCH).days % every_days == 0


@task.short_circuit(ignore_downstream_trigger_rules=False)
def should_train() -> bool:
    """True to train today; False skips training, evaluation and the gate (not scoring)."""
    context = get_current_context()
    params = context["params"]
    decision = is_training_day(
        str(context["ds"]), int(params["train_every_days"]), bool(params["force_retrain"])
    )
    log.info(
        "ds=%s force_retrain=%s train_every_days=%s -> %s",
        context["ds"],
        params["force_retrain"],
        params["train_every_days"],
        "train" if decision else "reuse the champions",
    )
    return decision


DS = "{{ ds }}"
RUN = "{{ run_id }}"
EPOCHS = ["{{ '--epochs' if params.train_epochs else '' }}", "{{ params.train_epochs or '' }}"]
#: The two-tower and SASRec training sample (the ranker trains on the validation sample).
TRAIN_USERS = [
    "{{ '--train-users' if params.train_users else '' }}",
    "{{ params.train_users or '' }}",
]


def train(model: str, *extra: str) -> common.SparkJobOperator:
    """``jobs/train.py --model <model>`` for the run's day."""
    return common.spark_job(
        "train_" + model, "train", ["--model", model, "--ds", DS, *EPOCHS, *extra]
    )


def score(step: str, task_id: str, *extra: str, **kwargs: object) -> common.SparkJobOperator:
    """``jobs/score.py <step>`` for the run's day, all steps sharing the run id."""
    return common.spark_job(task_id, "score", [step, "--ds", DS, "--run-id", RUN, *extra], **kwargs)


with DAG(
    dag_id="recsys_daily",
    description="Daily recommendations: ingest -> features -> train/gate -> score -> DQ -> publish",
    doc_md=__doc__,
    schedule="@daily",
    tags=["recsys", "spark", "daily"],
    # Templates decide with the gate's own function (features skips co-visitation off cadence).
    user_defined_macros={"is_training_day": is_training_day},
    params={
        "input_path": common.path_param(
            common.REPO_ROOT / "data" / "ml-latest-small",
            "MovieLens directory (ml-latest-small, ml-100k or ml-1m layout; .gz read directly).",
        ),
        "source": common.source_param(),
        "force_retrain": Param(
            False, type="boolean", description="Train today whatever the cadence."
        ),
        "train_every_days": common.int_param(
            7, "Training cadence in days.", minimum=1, maximum=365
        ),
        "train_epochs": common.int_param(
            0, "Epoch cap for every model; 0 = each model's default.", minimum=0, maximum=1000
        ),
        "train_users": common.int_param(
            0,
            "Two-tower and SASRec train on a seeded sample of this many users; 0 = every user.",
            minimum=0,
        ),
        "covisit_top_n": common.int_param(
            500,  # recsys.training.covisit.DEFAULT_TOP_N (DAG files import nothing of recsys)
            "Followers kept per item in features.covisit: at most items x this many rows, "
            "collected by training and broadcast to scoring; lower it for 100k-item catalogues.",
            minimum=1,
        ),
        "eval_models": common.string_param(
            "popularity,two_tower,sasrec,two_tower+ranker",
            "Models jobs/evaluate.py compares (als is slower).",
            r"^[a-z_+]+(,[a-z_+]+)*",
        ),
        "promotion_margin": Param(
            0.005,
            type="number",
            minimum=0,
            maximum=1,
            description="Allowed NDCG@10 drop of a challenger against the champion (absolute).",
        ),
        "content_embeddings": Param(
            True, type="boolean", description="Run the sentence encoder for item content."
        ),
    },
    **common.dag_settings(timeout_hours=8),
) as dag:
    setup_warehouse = common.spark_job("setup_warehouse", "setup_warehouse")
    ingest = common.spark_job(
        "ingest",
        "ingest",
        ["--input", "{{ params.input_path }}", "--ds", DS, "--source", "{{ params.source }}"],
    )
    features = common.spark_job(
        "features",
        "features",
        [
            "--ds", DS,
            "--source", "{{ params.source }}",
            "--source-ds", DS,
            "--covisit-top-n", "{{ params.covisit_top_n }}",
            "{{ '' if is_training_day(ds, params.train_every_days, params.force_retrain) "
            "else '--no-covisit' }}",
            "{{ '--no-content' if not params.content_embeddings else '' }}",
        ],
    )  # fmt: skip
    trending = common.spark_job(
        "trending", "trending", ["--ds", DS, "--source", "{{ params.source }}", "--run-id", RUN]
    )
    gate_open = should_train()
    train_two_tower = train("two_tower", *TRAIN_USERS)
    train_sasrec = train("sasrec", *TRAIN_USERS)
    train_ranker = train("ranker")
    evaluate = common.spark_job(
        "evaluate", "evaluate", ["--ds", DS, "--models", "{{ params.eval_models }}"]
    )
    promote = common.spark_job(
        "promote", "promote", ["--ds", DS, "--margin", "{{ params.promotion_margin }}"]
    )
    embeddings = score(
        "embeddings", "embeddings", trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS
    )
    related_items = common.spark_job(
        "related_items",
        "related_items",
        ["--ds", DS, "--source", "{{ params.source }}", "--run-id", RUN],
    )
    # Retrieval and ranking fused per user batch: only the top 50 per user is written.
    scoring = score("retrieve-rank", "scoring")
    # The checks judge the staged day of this run; a failed check is an alarm, not retried.
    data_quality = common.spark_job(
        "data_quality", "dq_checks", ["--ds", DS, "--run-id", RUN], retries=0
    )
    publish = score(
        "publish",
        "publish",
        "--require-dq",
        outlets=[common.RECSYS_DAILY_OUTPUT],
        asset_extra={"ds": DS, "source": "{{ params.source }}"},
    )

    setup_warehouse >> ingest >> features >> [trending, gate_open]
    gate_open >> [train_two_tower, train_sasrec]
    # The ranker reads both retrievers: the two-tower score and SASRec's log-probability.
    [train_two_tower, train_sasrec] >> train_ranker
    train_ranker >> evaluate >> promote >> embeddings
    features >> embeddings
    embeddings >> related_items
    [embeddings, trending] >> scoring
    # Nothing goes live (no publish, no Asset event, no completion record) before DQ passed.
    [scoring, related_items] >> data_quality >> publish
