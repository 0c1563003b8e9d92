"""# experiment_analysis

Daily A/B assignment and analysis, run whenever `recsys_daily` has produced its output
(scheduled on the Asset `dags.common.RECSYS_DAILY_OUTPUT`).

- `resolve_run`: the day (`ds`) and bronze delivery (`source`) this run is about (below);
- `assign`: `spark-submit jobs/assign.py --config {{ params.experiments_config }} --ds <ds>
  --source <source>`, the population of that day into `ab.assignments` (every day from
  `params.from_ds` to `ds` when set, in one Spark session);
- `should_replay` → `replay`: only with `params.replay` (offline demos, backtests):
  `jobs/replay.py` serves each assigned unit its variant's set from `serve.recommendations`
  and turns held-out interactions into `impression`/`click` events (rules in
  `ab_testing/replay.py`); otherwise skipped, and `ab.served`/`ab.events` come from the apps;
- `exposures`: `jobs/exposures.py`, first exposures from `ab.served` into `ab.exposures`
  (runs whether `replay` ran or was skipped);
- `list_analyses`: reads the experiments YAML (pure Python, at run time, never at parse time)
  and returns one argument list per experiment to analyse on `ds`;
- `analyze`: mapped over that list (dynamic task mapping), `spark-submit jobs/ab_analyze.py
  --config ... --metrics ... --ds <ds> --experiment <id>`, one task instance per experiment,
  labelled with its id in the UI.

An experiment is analysed from its `start` until `params.grace_days` (default 7, the metrics'
window) after its `end`, so windows opened on its last days still close; with none, `analyze`
is skipped. Two analyses run at a time at most.

**Which day.** Asset-triggered runs have no logical date in Airflow 3 (no `{{ ds }}`), so
`resolve_run` picks, in order: `params.ds`; the newest `ds` in the extras of the triggering
`recsys_daily` events; the run's logical date (`airflow dags test experiment_analysis 2026-01-12`);
the day of `run_after`. The source is `params.source`, else the triggering event's, else
`ml-latest-small`.

**Params**: `experiments_config` and `metrics_config` (YAML files, default the examples under
`ab_testing/`), `ds`, `from_ds`, `source`, `grace_days`, and for a replay `replay`,
`replay_experiment`, `replay_align`, `replay_data_start`, `replay_speed` (data days per replay
day) and `replay_list_size`. `replay_align` `held_out` (default) starts each user's clock at its
held-out interactions, so the replay's future is what offline evaluation holds out; `calendar`
maps `replay_data_start` onwards onto the experiment's first day with one global clock, which on
MovieLens leaves most users' held-out interactions outside the metric window
(docs/ab-demo-experiment.md). The demo's replay of the recommendation experiment:

```bash
airflow dags test experiment_analysis 2027-01-17 -c '{"experiments_config":
  "ab_testing/experiments.recs.yaml", "metrics_config": "ab_testing/metrics.recs.yaml",
  "from_ds": "2027-01-04", "replay": true, "replay_experiment": "recs_model_vs_popularity",
  "replay_data_start": "2010-01-01T00:00:00", "replay_speed": 250}'
```

Retries and the failure line as in `dags/common.py`.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, Param, TriggerRule, get_current_context, task

try:
    from dags import common
except ModuleNotFoundError:  # parsed by Airflow without the repository on sys.path
    sys.path.append(str(Path(__file__).resolve().parents[1]))
    from dags import common

log = logging.getLogger("recsys.dags.experiment_analysis")

#: Analyses running at once (each is a Spark driver; the reference machine has 2 cores).
MAX_PARALLEL_ANALYSES = 2


def pick_run_day(
    param_ds: str | None,
    event_extras: Iterable[Mapping[str, Any]],
    logical_ds: str | None,
    run_after: datetime | None,
) -> str:
    """The day a run is about: param, newest triggering event's ``ds``, logical date, run_after.

    Raises:
        ValueError: none of them gives a day.
    """
    if param_ds:
        return date.fromisoformat(param_ds).isoformat()
    days = [str(e["ds"]) for e in event_extras if e.get("ds")]
    if days:
        return max(date.fromisoformat(d) for d in days).isoformat()
    if logical_ds:
        return logical_ds
    if run_after is not None:
        return run_after.astimezone(UTC).date().isoformat()
    raise ValueError("ds: no params.ds, triggering event, logical date or run_after")


def pick_source(param_source: str | None, event_extras: Iterable[Mapping[str, Any]]) -> str:
    """``params.source``, else the newest triggering event's, else the default delivery."""
    if param_source:
        return param_source
    sources = [str(e["source"]) for e in event_extras if e.get("source")]
    return sources[-1] if sources else common.DEFAULT_SOURCE


def experiments_to_analyse(config_path: str | Path, ds: str, grace_days: int) -> list[str]:
    """Ids of experiments with ``start <= ds < end + grace_days``, in config order.

    Raises:
        ValueError: the config is missing or invalid (its loader names the problem).
    """
    from ab_testing.config import load_config  # run time only: no config reading at parse time

    day = date.fromisoformat(ds)
    grace = timedelta(days=grace_days)
    config = load_config(config_path)
    return [e.id for e in config.experiments if e.start <= day < e.end + grace]


def analysis_args(
    ids: Iterable[str], experiments_config: str, metrics_config: str, ds: str
) -> list[list[str]]:
    """``jobs/ab_analyze.py`` arguments per experiment (its id last: the map index label)."""
    return [
        [
            "--config", experiments_config,
            "--metrics", metrics_config,
            "--ds", ds,
            "--experiment", experiment_id,
        ]
        for experiment_id in ids
    ]  # fmt: skip


@task
def resolve_run() -> dict[str, str]:
    """The run's ``ds`` and ``source`` (see the DAG doc), as one XCom ``{"ds", "source"}``."""
    context = get_current_context()
    params = context["params"]
    events = context.get("triggering_asset_events") or {}
    extras = [dict(e.extra) for e in events.get(common.RECSYS_DAILY_OUTPUT, [])] if events else []
    run = context.get("dag_run")
    ds = pick_run_day(params.get("ds"), extras, context.get("ds"), getattr(run, "run_after", None))
    source = pick_source(params.get("source"), extras)
    log.info("ds=%s source=%s (%d triggering events)", ds, source, len(extras))
    return {"ds": ds, "source": source}


@task
def list_analyses(run: dict[str, str]) -> list[list[str]]:
    """One ``ab_analyze`` argument list per experiment to analyse on the run's day.

    (A TaskFlow argument cannot be called ``ds``: context keys are reserved names.)
    """
    day = run["ds"]
    params = get_current_context()["params"]
    ids = experiments_to_analyse(params["experiments_config"], day, int(params["grace_days"]))
    log.info("experiments to analyse on %s: %s", day, ids or "none")
    return analysis_args(ids, params["experiments_config"], params["metrics_config"], day)


@task.short_circuit(ignore_downstream_trigger_rules=False)
def should_replay() -> bool:
    """``params.replay``: True runs ``replay``; False skips it (``exposures`` still runs)."""
    return bool(get_current_context()["params"]["replay"])


RUN_DS = "{{ ti.xcom_pull(task_ids='resolve_run')['ds'] }}"
FROM_DS = ["{{ '--from-ds' if params.from_ds else '' }}", "{{ params.from_ds or '' }}"]


with DAG(
    dag_id="experiment_analysis",
    description="A/B assignment, then one analysis per live experiment (dynamic task mapping)",
    doc_md=__doc__,
    schedule=[common.RECSYS_DAILY_OUTPUT],
    tags=["ab_testing", "spark", "asset-triggered"],
    params={
        "experiments_config": common.path_param(
            common.REPO_ROOT / "ab_testing" / "experiments.example.yaml",
            "Experiments YAML (format: ab_testing/config.py).",
        ),
        "metrics_config": common.path_param(
            common.REPO_ROOT / "ab_testing" / "metrics.example.yaml",
            "Metrics YAML (format: ab_testing/metrics_config.py).",
        ),
        "ds": common.ds_param(),
        "from_ds": Param(
            None,
            type=["null", "string"],
            pattern=common.DS_PATTERN,
            description="Assign and record exposures for every day from this one to ds.",
        ),
        "source": common.source_param(default=None),
        "replay": Param(
            False, type="boolean", description="Replay held-out interactions (offline only)."
        ),
        "replay_experiment": common.string_param(
            "recs_model_vs_popularity",
            "Experiment id the replay serves.",
            r"^[a-z][a-z0-9_]{0,62}",
        ),
        "replay_data_start": common.string_param(
            "2010-01-01T00:00:00",
            "Data instant (UTC) mapped onto the experiment's first day.",
            r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}",
        ),
        "replay_align": Param(
            "held_out",
            type="string",
            enum=["held_out", "calendar"],
            description=(
                "held_out: each user's clock starts at its held-out interactions (what offline "
                "evaluation holds out); calendar: one clock from replay_data_start."
            ),
        ),
        "replay_speed": common.int_param(
            250, "Data days per replay day.", minimum=1, maximum=10000
        ),
        "replay_list_size": common.int_param(20, "Items per served list.", minimum=1, maximum=200),
        "grace_days": common.int_param(
            7, "Keep analysing an experiment this many days after its end.", minimum=0, maximum=90
        ),
    },
    **common.dag_settings(timeout_hours=6),
) as dag:
    run = resolve_run()
    assign = common.spark_job(
        "assign",
        "assign",
        [
            "--config", "{{ params.experiments_config }}",
            "--ds", RUN_DS,
            "--source", "{{ ti.xcom_pull(task_ids='resolve_run')['source'] }}",
            *FROM_DS,
        ],
    )  # fmt: skip
    replay_gate = should_replay()
    replay = common.spark_job(
        "replay",
        "replay",
        [
            "--config", "{{ params.experiments_config }}",
            "--experiment", "{{ params.replay_experiment }}",
            "--ds", RUN_DS,
            "--data-start", "{{ params.replay_data_start }}",
            "--align", "{{ params.replay_align }}",
            "--speed", "{{ params.replay_speed }}",
            "--list-size", "{{ params.replay_list_size }}",
        ],
    )  # fmt: skip
    exposures = common.spark_job(
        "exposures",
        "exposures",
        ["--ds", RUN_DS, *FROM_DS],
        trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS,
    )
    analyses = list_analyses(run)  # type: ignore[arg-type]  # an XComArg, resolved at run time
    analyze = common.spark_job_partial(
        "analyze",
        "ab_analyze",
        map_index_template="{{ task.application_args[-1] }}",
        max_active_tis_per_dagrun=MAX_PARALLEL_ANALYSES,
    ).expand(application_args=analyses)

    run >> assign >> replay_gate >> replay >> exposures >> analyses
    assign >> exposures
