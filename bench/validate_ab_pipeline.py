"""Planted-effect validation of the whole Spark A/B pipeline: known truth in, ab.results out.

Usage::

    python bench/validate_ab_pipeline.py                     # defaults: see --help
    python bench/validate_ab_pipeline.py --units 4000 --aa 4 --planted 4 --lift 0.2 --days 3

Many experiments run at once over the same units, each in its own layer with its own salt (so
every unit is in every experiment, with independent arms): ``--aa`` A/A experiments (no effect)
and ``--planted`` experiments whose treatment arm adds a known amount to two metrics. Per unit,
with ``z, w`` independent standard normals drawn from hashes of the seed and the unit id:

* ``value_per_unit`` (mean, one ``vp_purchase`` event with that value just after the unit's
  first exposure): ``MEAN + SD*z + delta * sum over planted e of (T_e - 1/2)``, where ``T_e`` is
  1 when the unit's arm of ``e`` is the treatment. ``delta`` makes the treatment mean
  ``(1 + lift)`` times the control mean of each planted experiment; the centring keeps the other
  experiments' effects mean-zero noise for each experiment;
* its covariate (``covariates:`` of the metrics file: regression adjustment with the HC1 moments
  of the Spark path): a ``vp_purchase`` event one day before first exposure worth
  ``MEAN + SD*(rho*z + sqrt(1 - rho^2)*w)``, correlated ``rho`` with the outcome's own part;
* ``converted`` (binomial, a ``vp_click`` event): probability ``P0 + delta_p * sum(T_e - 1/2)``,
  its own relative lift (``--conversion-lift``).

The data go through the real jobs on a throw-away warehouse: ``bronze.users`` deliveries (the
units arriving on each day) -> ``jobs.assign`` -> ``ab.served`` (one list per unit on its
arrival day) -> ``jobs.exposures`` -> ``ab.events`` (generated in Spark from ``ab.served`` and
the arms ``jobs.assign`` wrote to ``ab.assignments``) -> ``jobs.ab_analyze`` -> ``ab.results``.
Nothing per unit reaches the driver: the script collects only the ``ab.results`` rows (two per
experiment). Report, per metric (binomial standard errors beside every rate):

* A/A false-positive rate at ``--alpha``: fixed horizon (``p_value``) and under daily peeking
  with the always-valid ``p_value_sequential`` (a running minimum over the daily looks, so the
  last day's value rejects iff some daily look would have);
* coverage of the 95 % CI (``abs_ci_low..abs_ci_high``) of the planted absolute lift;
* detection rate (``p_value < alpha``, right sign) against the mean power that
  :func:`ab_testing.stats.power.power_from_se` predicts from each row's SE and the true effect;
* variance reduction of the adjustment (``variance_reduction``) against its expectation
  ``rho^2 * SD^2 / (SD^2 + noise of the other planted experiments)``.

Prints the table on stderr and ONE JSON line on stdout. Figures: ``docs/ab-validation.md``.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from bench import _harness
from bench._planted import CONVERTED, MEAN, P0, SD, VALUE, Design, summarise, table

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

log = logging.getLogger("validate_ab_pipeline")

SOURCE: Final = "planted"
UNIT_OFFSET: Final = 7_000_000_000  # user ids of the generated units start here
WINDOW_DAYS: Final = 7
PRE_WINDOW_DAYS: Final = 14
PURCHASE: Final = "vp_purchase"
CLICK: Final = "vp_click"
CONTROL: Final = "control"
TREATMENT: Final = "treatment"
#: The design's fields echoed in the record's ``params``.
PARAMS: Final = (
    "units", "aa", "planted", "lift", "conversion_lift", "rho", "days", "seed", "alpha"
)  # fmt: skip
_2_53: Final = float(2**53)


# -- configuration files ----------------------------------------------------------------------


def experiments_yaml(design: Design) -> str:
    """One layer per experiment (all buckets), 50/50 control/treatment, own salts."""
    end = design.start + timedelta(days=design.days)
    lines = [
        "version: 1",
        f"holdout: {{salt: vp{design.seed}-holdout, buckets: 0}}",
        "layers:",
    ]
    for exp in design.experiment_ids:
        lines += [
            f"  - id: l_{exp}",
            f"    salt: vp{design.seed}-layer-{exp}",
            "    experiments:",
            f"      - id: {exp}",
            f"        salt: vp{design.seed}-{exp}",
            f"        start: {design.start.isoformat()}",
            f"        end: {end.isoformat()}",
            "        buckets: [0, 10000]",
            "        variants:",
            f"          - {{id: {CONTROL}, weight: 1, control: true}}",
            f"          - {{id: {TREATMENT}, weight: 1}}",
        ]
    return "\n".join(lines) + "\n"


def metrics_yaml() -> str:
    """The two metrics, for every experiment (``default``)."""
    return f"""version: 1
metrics:
  - name: {VALUE}
    kind: mean
    numerator: {{event: {PURCHASE}, agg: sum}}
    window_days: {WINDOW_DAYS}
    covariates: [{{event: {PURCHASE}, agg: sum, pre_window_days: {PRE_WINDOW_DAYS}}}]
  - name: {CONVERTED}
    kind: binomial
    numerator: {{event: {CLICK}, agg: any}}
    window_days: {WINDOW_DAYS}
experiments:
  default: [{VALUE}, {CONVERTED}]
"""


# -- generated tables (Spark) -----------------------------------------------------------------


def _uniform(seed: int, tag: str, unit: Column) -> Column:
    """A uniform draw in (0, 1) per unit: 53 bits of XXH64(seed, tag, unit)."""
    from pyspark.sql import functions as F

    bits = F.shiftrightunsigned(F.xxhash64(F.lit(seed), F.lit(tag), unit), 11)
    return (bits.cast("double") + F.lit(0.5)) / F.lit(_2_53)


def _normal(seed: int, tag: str, unit: Column) -> Column:
    """A standard normal draw per unit (Box-Muller on two hash uniforms)."""
    from pyspark.sql import functions as F

    u1, u2 = _uniform(seed, tag + ".1", unit), _uniform(seed, tag + ".2", unit)
    return F.sqrt(F.lit(-2.0) * F.log(u1)) * F.cos(F.lit(2.0 * math.pi) * u2)


def population(spark: SparkSession, design: Design, run_id: str) -> DataFrame:
    """``bronze.users`` rows: each unit delivered on its arrival day (uniform over the days)."""
    from pyspark.sql import functions as F

    from recsys.warehouse.tables import BRONZE_USERS, Col

    user = F.col("id") + F.lit(UNIT_OFFSET)
    day = F.floor(_uniform(design.seed, "arrival", user) * F.lit(design.days)).cast("int")
    return (
        spark.range(design.units)
        .select(
            user.alias(Col.USER_ID),
            F.lit(None).cast("timestamp").alias(Col.FIRST_SEEN_TS),
            F.lit(None).cast("timestamp").alias(Col.LAST_SEEN_TS),
            F.lit(0).cast("long").alias(Col.N_INTERACTIONS),
            F.lit(None).cast("string").alias(Col.GENDER),
            F.lit(None).cast("int").alias(Col.AGE),
            F.lit(None).cast("string").alias(Col.OCCUPATION),
            F.lit(None).cast("string").alias(Col.ZIP_CODE),
            F.lit(SOURCE).alias(Col.SOURCE),
            F.lit(run_id).alias(Col.RUN_ID),
            F.date_add(F.lit(design.start), day).alias(Col.DS),
        )
        .select(*spark.table(BRONZE_USERS.qualified_name).columns)
    )


def served(spark: SparkSession, design: Design) -> DataFrame:
    """``ab.served``: one list per unit on its arrival day, before 23:00 UTC."""
    from pyspark.sql import functions as F

    from recsys.warehouse.tables import AB_SERVED, BRONZE_USERS, Col

    users = spark.table(BRONZE_USERS.qualified_name).where(_mine(design))
    unit = F.col(Col.USER_ID).cast("string")
    seconds = F.floor(_uniform(design.seed, "served", unit) * F.lit(23 * 3600)).cast("long")
    ts = F.timestamp_seconds(F.unix_timestamp(F.col(Col.DS).cast("timestamp")) + seconds)
    return users.select(
        unit.alias(Col.UNIT_ID),
        F.lit("home").alias(Col.SURFACE),
        ts.alias(Col.SERVED_TS),
        F.lit("model").alias(Col.REC_SET),
        F.array(F.lit(1).cast("long")).alias(Col.ITEM_IDS),
        F.lit("vp").alias(Col.MODEL_VERSION),
        F.lit(SOURCE).alias(Col.SOURCE),
        F.col(Col.DS),
    ).select(*spark.table(AB_SERVED.qualified_name).columns)


def _mine(design: Design) -> Column:
    from pyspark.sql import functions as F

    from recsys.warehouse.tables import Col

    days = (F.col(Col.DS) >= F.lit(design.start)) & (F.col(Col.DS) <= F.lit(design.last_day))
    return days & (F.col(Col.SOURCE) == F.lit(SOURCE))


def events(spark: SparkSession, design: Design) -> DataFrame:
    """``ab.events`` of every unit, its planted effects read from the arms in ``ab.assignments``.

    ``shift`` is ``sum over planted experiments of (T_e - 1/2)`` of the unit, from the arms
    ``jobs.assign`` wrote; the events sit at fixed offsets from the unit's served list, which
    is its first exposure in every experiment.
    """
    from pyspark.sql import functions as F

    from recsys.warehouse.tables import AB_ASSIGNMENTS, AB_EVENTS, AB_SERVED, Col

    days = (F.col(Col.DS) >= F.lit(design.start)) & (F.col(Col.DS) <= F.lit(design.last_day))
    arms = spark.table(AB_ASSIGNMENTS.qualified_name).where(
        days & F.col(Col.EXPERIMENT_ID).isin(design.planted_ids or ["-"])
    )
    shifts = arms.groupBy(Col.UNIT_ID).agg(
        F.sum(F.when(F.col(Col.IS_CONTROL), F.lit(-0.5)).otherwise(F.lit(0.5))).alias("_shift")
    )
    units = (
        spark.table(AB_SERVED.qualified_name)
        .where(_mine(design))
        .join(shifts, Col.UNIT_ID, "left")
        .select(Col.UNIT_ID, Col.SERVED_TS, F.coalesce(F.col("_shift"), F.lit(0.0)).alias("s"))
    )
    unit, s = F.col(Col.UNIT_ID), F.col("s")
    z, w = _normal(design.seed, "z", unit), _normal(design.seed, "w", unit)
    rho = design.rho
    outcome = F.lit(MEAN) + F.lit(SD) * z + F.lit(design.delta_value) * s
    covariate = F.lit(MEAN) + F.lit(SD) * (F.lit(rho) * z + F.lit(math.sqrt(1 - rho**2)) * w)
    p = F.least(F.greatest(F.lit(P0) + F.lit(design.delta_converted) * s, F.lit(0.0)), F.lit(1.0))
    clicked = _uniform(design.seed, "click", unit) < p
    at = F.col(Col.SERVED_TS)

    def event(kind: str, ts: Column, value: Column | None) -> Column:
        return F.struct(
            F.lit(kind).alias(Col.EVENT_TYPE),
            ts.alias(Col.EVENT_TS),
            (value if value is not None else F.lit(None)).cast("double").alias(Col.VALUE),
        )

    listed = F.array(
        event(PURCHASE, at - F.expr("INTERVAL 1 DAY"), covariate),
        event(PURCHASE, at + F.expr("INTERVAL 1 MINUTE"), outcome),
        F.when(clicked, event(CLICK, at + F.expr("INTERVAL 2 MINUTES"), None)),
    )
    out = units.select(unit, F.explode(listed).alias("e")).where(F.col("e").isNotNull())
    return out.select(
        unit,
        F.col("e")[Col.EVENT_TYPE].alias(Col.EVENT_TYPE),
        F.col("e")[Col.EVENT_TS].alias(Col.EVENT_TS),
        F.col("e")[Col.VALUE].alias(Col.VALUE),
        F.lit(None).cast("long").alias(Col.ITEM_ID),
        F.lit(SOURCE).alias(Col.SOURCE),
        F.to_date(F.col("e")[Col.EVENT_TS]).alias(Col.DS),
    ).select(*spark.table(AB_EVENTS.qualified_name).columns)


# -- the pipeline -----------------------------------------------------------------------------


def _job(name: str, main: Any, argv: list[str]) -> None:
    status = main(argv)
    if status != 0:
        raise RuntimeError(f"{name} {' '.join(argv)}: exit status {status}")


def run_pipeline(
    spark: SparkSession, design: Design, work: Path, run_id: str = "validate"
) -> Iterator[tuple[str, Any]]:
    """Generate, run the jobs, and yield stage timings then ``("rows", the ab.results rows)``.

    The rows are those of the design's experiments on the last day, slice ``all`` (dicts).
    Writes replace only the design's partitions (its days and the ``planted`` source) and its
    experiments' rows, so a shared warehouse keeps its other rows.
    """
    from pyspark.sql import functions as F

    from jobs import ab_analyze, assign, exposures
    from recsys.warehouse.io import replace_rows
    from recsys.warehouse.tables import AB_EVENTS, AB_RESULTS, AB_SERVED, BRONZE_USERS, Col

    work.mkdir(parents=True, exist_ok=True)
    config, metrics = work / "experiments.yaml", work / "metrics.yaml"
    config.write_text(experiments_yaml(design))
    metrics.write_text(metrics_yaml())
    first, last = design.start.isoformat(), design.last_day.isoformat()
    days = ["--from-ds", first, "--ds", last]
    t = time.perf_counter()

    def lap(stage: str) -> tuple[str, float]:
        nonlocal t
        now = time.perf_counter()
        seconds, t = round(now - t, 1), now
        log.info("%s: %.1f s", stage, seconds)
        return f"{stage}_seconds", seconds

    replace_rows(population(spark, design, run_id), BRONZE_USERS, _mine(design))
    yield lap("population")
    _job("jobs.assign", assign.main, ["--config", str(config), *days, "--source", SOURCE])
    yield lap("assign")
    replace_rows(served(spark, design), AB_SERVED, _mine(design))
    _job("jobs.exposures", exposures.main, [*days, "--source", SOURCE, "--run-id", run_id])
    yield lap("exposures")
    pre = design.start - timedelta(days=1)
    owned = (F.col(Col.DS) >= F.lit(pre)) & (F.col(Col.DS) <= F.lit(design.last_day))
    replace_rows(events(spark, design), AB_EVENTS, owned & (F.col(Col.SOURCE) == F.lit(SOURCE)))
    yield lap("events")
    argv = ["--config", str(config), "--metrics", str(metrics), "--ds", last]
    argv += ["--reports-dir", str(work / "reports"), "--alpha", str(design.alpha)]
    argv += ["--run-id", run_id]
    _job("jobs.ab_analyze", ab_analyze.main, argv)
    yield lap("ab_analyze")
    results = spark.table(AB_RESULTS.qualified_name).where(
        (F.col(Col.DS) == F.lit(design.last_day))
        & F.col(Col.EXPERIMENT_ID).isin(design.experiment_ids)
        & (F.col(Col.SLICE) == F.lit("all"))
    )
    # Two rows per experiment: aggregates only.
    yield "rows", [r.asDict() for r in results.collect()]


# -- main -------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    doc = __doc__ or ""
    parser = argparse.ArgumentParser(prog="validate_ab_pipeline", description=doc.split("\n\n")[0])
    parser.add_argument("--units", type=int, default=20_000, help="units, each in every experiment")
    parser.add_argument("--aa", type=int, default=50, help="A/A experiments")
    parser.add_argument("--planted", type=int, default=50, help="experiments with the lift")
    parser.add_argument(
        "--lift", type=float, default=0.007, help=f"planted relative lift of {VALUE}"
    )
    parser.add_argument(
        "--conversion-lift", type=float, default=0.05, help=f"planted relative lift of {CONVERTED}"
    )
    parser.add_argument("--rho", type=float, default=0.5, help="covariate-outcome correlation")
    parser.add_argument("--days", type=int, default=7, help="test days = daily looks")
    parser.add_argument("--seed", type=int, default=0)
    _harness.add_work_args(parser)
    args = parser.parse_args(argv)
    try:
        args.design = Design(
            args.units,
            args.aa,
            args.planted,
            args.lift,
            args.rho,
            args.days,
            args.seed,
            conversion_lift=args.conversion_lift,
        )
    except ValueError as err:
        parser.error(str(err))
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    design: Design = args.design
    from recsys.warehouse.catalog import apply_ddl

    session = _harness.warehouse_spark(
        "validate-ab-", args.work_dir, args.keep, "validate_ab_pipeline"
    )
    with session as (spark, settings, root):
        started = time.perf_counter()
        load = [os.getloadavg()[0]]
        apply_ddl(spark, settings.warehouse_root)
        record: dict[str, Any] = {"bench": "validate_ab_pipeline"}
        record["params"] = {name: getattr(design, name) for name in PARAMS}
        rows: list[dict[str, Any]] = []
        for key, value in run_pipeline(spark, design, root / "work"):
            if key == "rows":
                rows = value
            else:
                record[key] = value
            load.append(os.getloadavg()[0])
        record["result_rows"] = len(rows)
        record.update(summarise(design, rows))
        record["spark_master"] = spark.sparkContext.master
        record["spark_shuffle_partitions"] = spark.conf.get("spark.sql.shuffle.partitions")
        _harness.finish_timed(record, started, load, table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
