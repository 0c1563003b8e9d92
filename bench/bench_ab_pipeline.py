"""Benchmark the A/B pipeline: outcome join + sufficient statistics + tests, Spark against DuckDB.

Usage::

    python bench/bench_ab_pipeline.py                        # 1M units, 10M events, 14 looks
    python bench/bench_ab_pipeline.py --units 100000 --events 1000000 --repeats 1

Seeded synthetic exposures (three experiments, one with a small true effect on clicks) and
events (impressions and clicks, over the 14 days before and the ``--days`` days of the test) are
written once to Parquet with numpy + pyarrow (not timed). Each arm then goes from the Parquet
files to result rows, with the same three metrics (a binomial, a mean with a CUPED covariate and
a ratio, on different windows) at every daily look:

* spark: ``spark.read.parquet`` -> :func:`ab_testing.outcomes.sufficient_stats` -> ``collect``;
* duckdb: the same windows, looks and covariates as one SQL query over the same files (per-unit
  cumulative values per look, then the same sums) -> ``fetchall``;

and both finish with the same pure-Python step (:func:`ab_testing.analysis_input.experiment_data`
then :func:`ab_testing.stats.analyze_experiments`). The two arms' sufficient statistics must agree
(counts exactly, sums to 1e-9 relative) before any time is reported. Spark start-up is excluded
(the session is started and warmed with a trivial query first). Each arm runs ``--repeats``
times, alternating which goes first; ``ratio`` compares the best runs, ``ratio_first_run`` the
first ones (Spark's first run also pays for code generation and JIT warm-up of this plan). Wall
seconds on a shared machine move with its load, so CPU seconds (Spark: driver JVM + Python;
DuckDB: this process) and the load average are reported too. Prints ONE JSON line on stdout
(logs go to stderr); the goal is Spark within 1.5x of DuckDB's time. Needs ``duckdb``
(``requirements/bench.lock``).

Measured figures and their history: ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as time_of_day
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np

if __package__ in (None, ""):  # python bench/bench_ab_pipeline.py: the repository root first
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ab_testing.analysis_input import STAT_COLUMNS
from ab_testing.metrics_config import EventAggregate, MetricDefinition
from ab_testing.settings import OVERALL_SLICE
from bench import _harness, _measure

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from ab_testing.stats import ResultRow

log = logging.getLogger("bench_ab_pipeline")

GOAL: Final = 1.5
REL_TOL: Final = 1e-9
START: Final = datetime(2026, 1, 1, tzinfo=UTC)
PRE_DAYS: Final = 14  # events before the test start (covariate period)
US_PER_DAY: Final = 86_400_000_000
CONTROL: Final = "control"

METRICS: Final[tuple[MetricDefinition, ...]] = (
    MetricDefinition("converted", "binomial", EventAggregate("click", "any"), window_days=3),
    MetricDefinition(
        "click_value",
        "mean",
        EventAggregate("click", "sum"),
        window_days=7,
        covariate=EventAggregate("click", "sum", pre_window_days=PRE_DAYS),
    ),
    MetricDefinition(
        "ctr",
        "ratio",
        EventAggregate("click", "count"),
        window_days=14,
        denominator=EventAggregate("impression", "count"),
    ),
)


@dataclass(frozen=True, slots=True)
class Experiment:
    """A synthetic experiment: its variants' weights and the share of units it exposes."""

    id: str
    weights: Mapping[str, float]
    share: float
    click_lift: float = 0.0  # relative lift of every non-control variant's click rate


EXPERIMENTS: Final = (
    Experiment("ranking_v2", {CONTROL: 0.5, "treat": 0.5}, share=0.6, click_lift=0.05),
    Experiment("diversity", {CONTROL: 0.5, "mmr_03": 0.25, "mmr_05": 0.25}, share=0.4),
    Experiment("carousel", {CONTROL: 0.5, "rows3": 0.5}, share=0.3),
)
Key = tuple[str, str, str, str, date]
Rows = list[dict[str, Any]]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    doc = __doc__ or ""
    parser = argparse.ArgumentParser(prog="bench_ab_pipeline", description=doc.split("\n\n")[0])
    parser.add_argument("--units", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=14, help="test days = daily looks")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--files", type=int, default=8, help="Parquet files of events")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per arm (best kept)")
    parser.add_argument("--threads", type=int, help="Spark local[N] and DuckDB threads (cores)")
    parser.add_argument("--driver-memory", help="Spark driver heap, e.g. 4g (default: settings)")
    parser.add_argument("--duckdb-memory", default="4GB", help="DuckDB memory_limit")
    _harness.add_args(parser)
    args = parser.parse_args(argv)
    for flag in ("units", "events", "days", "files", "repeats"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag}: must be >= 1, got {getattr(args, flag)}")
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads: must be >= 1, got {args.threads}")
    return args


def looks(days: int) -> list[date]:
    """The daily looks: the end of each test day."""
    return [START.date() + timedelta(days=i) for i in range(days)]


# -- data -------------------------------------------------------------------------------------


def generate(root: Path, units: int, events: int, days: int, seed: int, files: int) -> int:
    """Write ``exposures/`` and ``events/`` Parquet under ``root``; returns the exposure rows."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    start_us = int(START.timestamp()) * 1_000_000
    test_us = days * US_PER_DAY
    unit_ids = pa.array([f"u{i:08d}" for i in range(units)], pa.string())
    ts_type = pa.timestamp("us", tz="UTC")
    never = np.iinfo(np.int64).max
    treated_since = np.full(units, never, dtype=np.int64)  # when the unit's clicks are lifted
    lift = np.zeros(units)
    tables = []
    for exp in EXPERIMENTS:
        exposed = np.flatnonzero(rng.random(units) < exp.share)
        names = list(exp.weights)
        probs = np.array([exp.weights[v] for v in names])
        variant = rng.choice(len(names), size=exposed.size, p=probs / probs.sum())
        # Arrivals taper off over the test: exponential, re-drawn uniformly past its end.
        offset = rng.exponential(test_us / 4, exposed.size).astype(np.int64)
        late = offset >= test_us
        offset[late] = rng.integers(0, test_us, int(late.sum()))
        first_ts = start_us + offset
        if exp.click_lift:
            treated = exposed[variant != names.index(CONTROL)]
            treated_since[treated] = first_ts[variant != names.index(CONTROL)]
            lift[treated] = exp.click_lift
        tables.append(
            pa.table(
                {
                    "experiment_id": pa.array([exp.id] * exposed.size, pa.string()),
                    "variant": pc.take(pa.array(names, pa.string()), pa.array(variant)),
                    "unit_id": pc.take(unit_ids, pa.array(exposed)),
                    "first_exposure_ts": pa.array(first_ts, ts_type),
                }
            )
        )
    exposures = pa.concat_tables(tables)
    (root / "exposures").mkdir(parents=True)
    pq.write_table(exposures, root / "exposures" / "part-00000.parquet")

    activity = rng.lognormal(0.0, 1.0, units)
    unit = rng.choice(units, size=events, p=activity / activity.sum())
    ts = start_us - PRE_DAYS * US_PER_DAY + rng.integers(0, (PRE_DAYS + days) * US_PER_DAY, events)
    order = np.argsort(ts, kind="stable")
    unit, ts = unit[order], ts[order]
    click_rate = rng.beta(2.0, 18.0, units)
    p_click = click_rate[unit] * np.where(ts >= treated_since[unit], 1.0 + lift[unit], 1.0)
    click = rng.random(events) < p_click
    value = np.round(rng.lognormal(0.0, 1.0, events), 2)
    table = pa.table(
        {
            "unit_id": pc.take(unit_ids, pa.array(unit)),
            "event_type": pc.take(
                pa.array(["impression", "click"], pa.string()), pa.array(click.astype(np.int8))
            ),
            "event_ts": pa.array(ts, ts_type),
            "value": pa.array(value, pa.float64(), mask=~click),
        }
    )
    (root / "events").mkdir()
    step = -(-events // files)
    for i in range(files):
        part = table.slice(i * step, step)
        if part.num_rows:
            pq.write_table(part, root / "events" / f"part-{i:05d}.parquet", row_group_size=step)
    return int(exposures.num_rows)


# -- arms -------------------------------------------------------------------------------------


def spark_stats(spark: SparkSession, root: Path, days: int) -> Rows:
    """Sufficient statistics by ``ab_testing.outcomes`` over the Parquet files."""
    from ab_testing.outcomes import sufficient_stats

    exposures = spark.read.parquet(str(root / "exposures"))
    events = spark.read.parquet(str(root / "events"))
    return [r.asDict() for r in sufficient_stats(exposures, events, METRICS, looks(days)).collect()]


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _event_value(agg: EventAggregate) -> str:
    return "COALESCE(v.value, 0.0)" if agg.agg == "sum" else "1.0"


def _finish(agg: EventAggregate, total: str) -> str:
    return f"CASE WHEN {total} > 0 THEN 1.0 ELSE 0.0 END" if agg.agg == "any" else total


def duckdb_sql(root: Path, metrics: Sequence[MetricDefinition], days: Sequence[date]) -> str:
    """One query with the semantics of :func:`ab_testing.outcomes.sufficient_stats`.

    Every exposure (exposed by the last look) is joined to its events once (outer join: units
    without events count as zeros); per exposure, each metric's numerator and denominator are
    summed up to the end of every look, and its covariate over the pre-exposure window; each
    exposure then yields one row per look from its exposure day on, and the ten sums are taken
    per (experiment, variant, metric, look). Timestamps are read as UTC ``TIMESTAMP`` (from
    epoch microseconds): ``TIMESTAMPTZ`` arithmetic goes through ICU and is about 10x slower.
    """
    end = datetime.combine(days[-1] + timedelta(days=1), time_of_day.min, UTC)
    end_us = int(end.timestamp()) * 1_000_000  # the end of the last look
    contrib, per_exposure, at_look, totals = [], [], [], []
    after = max(m.window_days for m in metrics)
    before = max((m.covariate.pre_window_days or 0 for m in metrics if m.covariate), default=0)

    def raw(name: str, agg: EventAggregate, cond: str) -> None:
        contrib.append(
            f"CASE WHEN v.event_type = {_lit(agg.event)} AND {cond}"
            f" THEN {_event_value(agg)} ELSE 0.0 END AS {name}"
        )

    for i, m in enumerate(metrics):
        in_window = f"v.event_ts >= e.fe AND v.event_ts < e.fe + INTERVAL {m.window_days} DAY"
        parts = [("y", m.numerator)] + ([("d", m.denominator)] if m.denominator else [])
        for p, agg in parts:
            raw(f"{p}{i}", agg, in_window)
            cumulative = [
                f"SUM(CASE WHEN day <= DATE '{d.isoformat()}' THEN {p}{i} ELSE 0.0 END)"
                for d in days
            ]
            per_exposure.append(f"[{', '.join(cumulative)}] AS {p}{i}")
            at_look.append(f"{_finish(agg, f'{p}{i}[k]')} AS {p}{i}")
        if m.denominator is None:
            at_look.append(f"1.0 AS d{i}")
        c = m.covariate
        if c is not None and c.pre_window_days is not None:
            pre = f"v.event_ts < e.fe AND v.event_ts >= e.fe - INTERVAL {c.pre_window_days} DAY"
            raw(f"x{i}", c, pre)
            per_exposure.append(f"SUM(x{i}) AS x{i}")
            at_look.append(f"{_finish(c, f'x{i}')} AS x{i}")
        else:
            at_look.append(f"0.0 AS x{i}")
        y, d, x = f"y{i}", f"d{i}", f"x{i}"
        products = [y, f"{y}*{y}", d, f"{d}*{d}", f"{y}*{d}", x, f"{x}*{x}", f"{y}*{x}", f"{d}*{x}"]
        totals += [
            f"SUM({p})::DOUBLE AS {col}{i}"
            for col, p in zip(STAT_COLUMNS[1:], products, strict=True)
        ]
    unpivot = " UNION ALL ".join(
        f"SELECT experiment_id, variant, {_lit(m.name)} AS metric, {_lit(OVERALL_SLICE)} AS slice,"
        f" look_date, n, {', '.join(f'{col}{i} AS {col}' for col in STAT_COLUMNS[1:])},"
        f" {'true' if m.covariate is not None else 'false'} AS has_covariate FROM agg"
        for i, m in enumerate(metrics)
    )
    types = ", ".join(_lit(t) for t in sorted({t for m in metrics for t in m.event_types}))
    looks_list = ", ".join(f"DATE '{d.isoformat()}'" for d in days)
    return f"""
WITH e AS (
  SELECT experiment_id, variant, unit_id, make_timestamp(epoch_us(first_exposure_ts)) AS fe
  FROM read_parquet('{root}/exposures/*.parquet')
  WHERE epoch_us(first_exposure_ts) < {end_us}
), v AS (
  SELECT unit_id, event_type, make_timestamp(epoch_us(event_ts)) AS event_ts, value
  FROM read_parquet('{root}/events/*.parquet')
  WHERE event_type IN ({types}) AND epoch_us(event_ts) < {end_us}
), joined AS (
  SELECT e.experiment_id, e.variant, e.unit_id, e.fe, CAST(v.event_ts AS DATE) AS day,
         {", ".join(contrib)}
  FROM e LEFT JOIN v ON v.unit_id = e.unit_id
    AND v.event_ts >= e.fe - INTERVAL {before} DAY AND v.event_ts < e.fe + INTERVAL {after} DAY
), per_exposure AS (
  SELECT experiment_id, variant, unit_id, CAST(fe AS DATE) AS exposed_on,
         {", ".join(per_exposure)}
  FROM joined GROUP BY experiment_id, variant, unit_id, fe
), unit_look AS (
  SELECT experiment_id, variant, look AS look_date, {", ".join(at_look)}
  FROM per_exposure JOIN (SELECT unnest([{looks_list}]) AS look,
                                 unnest(range(1, {len(days) + 1})) AS k) ON look >= exposed_on
), agg AS MATERIALIZED (
  SELECT experiment_id, variant, look_date, COUNT(*) AS n, {", ".join(totals)}
  FROM unit_look GROUP BY ALL
)
{unpivot}
"""


def duckdb_stats(con: Any, root: Path, days: int) -> Rows:
    """Sufficient statistics by :func:`duckdb_sql`."""
    cur = con.execute(duckdb_sql(root, METRICS, looks(days)))
    names = [c[0] for c in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def analyse(rows: Rows) -> list[ResultRow]:
    """The pure-Python step shared by both arms: engine input per experiment, then the tests."""
    from ab_testing.analysis_input import experiment_data
    from ab_testing.stats import analyze_experiments

    data = []
    for exp in EXPERIMENTS:
        mine = [r for r in rows if r["experiment_id"] == exp.id]
        data.append(experiment_data(exp.id, CONTROL, exp.weights, METRICS, mine)[0])
    return analyze_experiments(data)


def compare(spark_rows: Rows, duck_rows: Rows) -> int:
    """Raise unless both arms give the same statistics; returns the number of stats rows."""

    def keyed(rows: Rows) -> dict[Key, dict[str, Any]]:
        out = {
            (r["experiment_id"], r["variant"], r["metric"], r["slice"], r["look_date"]): r
            for r in rows
        }
        if len(out) != len(rows):
            raise RuntimeError("duplicate (experiment, variant, metric, slice, look) rows")
        return out

    a, b = keyed(spark_rows), keyed(duck_rows)
    if a.keys() != b.keys():
        diff = sorted(a.keys() ^ b.keys())[:5]
        raise RuntimeError(f"arms disagree on the stats rows ({len(a)} vs {len(b)}): {diff}")
    for key, row in a.items():
        other = b[key]
        if row["n"] != other["n"] or row["has_covariate"] != other["has_covariate"]:
            raise RuntimeError(f"{key}: n/has_covariate differ: {row} vs {other}")
        for col in STAT_COLUMNS[1:]:
            x, y = float(row[col]), float(other[col])
            if abs(x - y) > REL_TOL * max(abs(x), abs(y)):
                raise RuntimeError(f"{key} {col}: spark {x!r} != duckdb {y!r}")
    return len(a)


# -- main -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Run:
    """One timed run of an arm: wall and CPU seconds, its statistics and results."""

    seconds: float
    cpu_seconds: float
    rows: Rows
    results: list[ResultRow]


def _cpu_seconds(pid: int | None) -> float:
    """CPU seconds of this process plus, when given, of process ``pid`` (the driver JVM)."""
    total = time.process_time()
    if pid is not None:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _timed(step: Callable[[], Rows], pid: int | None) -> Run:
    cpu, started = _cpu_seconds(pid), time.perf_counter()
    rows = step()
    results = analyse(rows)
    return Run(time.perf_counter() - started, _cpu_seconds(pid) - cpu, rows, results)


def _spark_threads(spark: SparkSession) -> int:
    """Task threads of a ``local[N]`` / ``local[*]`` master (else the default parallelism)."""
    master = spark.sparkContext.master or ""
    if master.startswith("local["):
        n = master[len("local[") :].split(",")[0].rstrip("]")
        return os.cpu_count() or 1 if n == "*" else int(n)
    return spark.sparkContext.defaultParallelism


def run(
    spark: SparkSession, con: Any, root: Path, args: argparse.Namespace
) -> Iterator[tuple[str, Any]]:
    load = [os.getloadavg()]
    t0 = time.perf_counter()
    exposures = generate(root, args.units, args.events, args.days, args.seed, args.files)
    yield "units", args.units
    yield "events", args.events
    yield "exposures", exposures
    yield "days", args.days
    yield "metrics", [m.name for m in METRICS]
    yield "generate_seconds", round(time.perf_counter() - t0, 1)
    jvm = _measure.jvm_pid(spark)
    arms: dict[str, tuple[Callable[[], Rows], int | None]] = {
        "spark": (lambda: spark_stats(spark, root, args.days), jvm),
        "duckdb": (lambda: duckdb_stats(con, root, args.days), None),
    }
    runs: dict[str, list[Run]] = {"spark": [], "duckdb": []}
    for i in range(args.repeats):
        # Alternate which arm goes first, so that a drifting load favours neither.
        for name in list(arms) if i % 2 == 0 else list(arms)[::-1]:
            step, pid = arms[name]
            runs[name].append(_timed(step, pid))
            log.info("%s: %.1f s", name, runs[name][-1].seconds)
            load.append(os.getloadavg())
        if i == 0:
            yield "stats_rows", compare(runs["spark"][0].rows, runs["duckdb"][0].rows)
            if len(runs["spark"][0].results) != len(runs["duckdb"][0].results):
                raise RuntimeError("arms disagree on the number of result rows")
            yield "result_rows", len(runs["spark"][0].results)
    best = {name: min(r, key=lambda run: run.seconds) for name, r in runs.items()}
    spark_s, duck_s = best["spark"].seconds, best["duckdb"].seconds
    first = runs["spark"][0].seconds / runs["duckdb"][0].seconds
    yield "spark_seconds", round(spark_s, 2)
    yield "duckdb_seconds", round(duck_s, 2)
    yield "spark_runs", [round(r.seconds, 2) for r in runs["spark"]]
    yield "duckdb_runs", [round(r.seconds, 2) for r in runs["duckdb"]]
    yield "ratio", round(spark_s / duck_s, 2)
    yield "goal", GOAL
    yield "met", spark_s <= GOAL * duck_s
    yield "ratio_first_run", round(first, 2)
    yield "met_first_run", first <= GOAL
    if jvm is not None:
        yield "spark_cpu_seconds", round(best["spark"].cpu_seconds, 1)
    yield "duckdb_cpu_seconds", round(best["duckdb"].cpu_seconds, 1)
    yield "spark_master", spark.sparkContext.master
    yield "spark_threads", _spark_threads(spark)
    yield "spark_shuffle_partitions", int(spark.conf.get("spark.sql.shuffle.partitions") or 0)
    threads = con.execute("SELECT current_setting('threads')").fetchone()
    yield "duckdb_threads", int(threads[0])
    yield "cores", os.cpu_count()
    yield "loadavg_1m", [round(x[0], 2) for x in load]
    yield "loadavg_max_5m", round(max(x[1] for x in load), 2)


def _with_duckdb(
    spark: SparkSession, args: argparse.Namespace, root: Path, meter: Any
) -> Iterator[tuple[str, Any]]:
    """:func:`run` with a warmed Spark session and a DuckDB connection (closed after)."""
    import duckdb

    spark.range(1000).selectExpr("sum(id)").collect()  # warm-up: JVM, executors
    con = duckdb.connect(config={"threads": args.threads or os.cpu_count() or 1})
    try:
        con.execute(f"SET memory_limit = {_lit(args.duckdb_memory)}")
        con.execute("SET TimeZone = 'UTC'")
        yield from run(spark, con, root / "data", args)
    finally:
        con.close()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.driver_memory:
        os.environ["RECSYS_DRIVER_MEMORY"] = args.driver_memory
    if args.threads:
        os.environ["RECSYS_SPARK_MASTER"] = f"local[{args.threads}]"
    return _harness.spark_bench("ab_pipeline", args, _with_duckdb, __name__)


if __name__ == "__main__":
    sys.exit(main())
