"""Pure-Python assignment: fixed vectors, hash properties, layers, holdout, ramp, targeting."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from ab_testing.assignment import assign, assignment_for, in_holdout, matches
from ab_testing.bucketing import N_BUCKETS, SEED, bucket, xxh64
from ab_testing.config import ExperimentsConfig, TargetingFilter, parse_config
from recsys.settings import PROJECT_ROOT
from tests.helpers.experiments import experiment, layer

#: (salt, unit_id, bucket): the vectors of the module docstring, shared with the Spark tests.
VECTORS = [
    ("exp-checkout", "user-1", 4098),
    ("layer-ranking", "42", 6287),
    ("holdout", "", 2775),
    ("exp-search_v2", "ünïcødé-用户-7", 5095),
    ("layer-home_feed", "a-rather-long-unit-id-0123456789abcdef", 7129),
]
DAY = date(2026, 1, 10)
SALTS = st.from_regex(r"[a-z0-9][a-z0-9_.-]{0,20}", fullmatch=True)
#: Deterministic examples: a statistical test at p > 0.001 must not flake between runs.
STAT = settings(max_examples=4, deadline=None, derandomize=True)


def config(**overrides: Any) -> ExperimentsConfig:
    """Holdout 5%; layer "ranking" with exp_a [0, 3000) ramped and exp_b [3000, 9000) targeted
    (age >= 18, country in us/ca); layer "ui" with exp_c on all buckets, weights 1:1:2."""
    raw: dict[str, Any] = {
        "version": 1,
        "holdout": {"salt": "holdout-t", "buckets": 500},
        "layers": [
            layer(
                "ranking",
                experiment(
                    "exp_a",
                    "2026-01-01",
                    "2026-03-01",
                    [0, 3000],
                    {"control": 1, "treat": 1},
                    ramp=[
                        {"date": "2026-01-01", "percent": 10},
                        {"date": "2026-01-05", "percent": 50},
                        {"date": "2026-01-09", "percent": 100},
                    ],
                ),
                experiment(
                    "exp_b",
                    "2026-01-01",
                    "2026-03-01",
                    [3000, 9000],
                    {"control": 0.5, "b1": 0.5},
                    targeting=[
                        {"attribute": "age", "op": "ge", "value": 18},
                        {"attribute": "country", "op": "in", "value": ["us", "ca"]},
                    ],
                ),
            ),
            layer(
                "ui",
                experiment(
                    "exp_c",
                    "2026-01-01",
                    "2026-03-01",
                    [0, 10000],
                    {"control": 1, "c1": 1, "c2": 2},
                ),
            ),
        ],
    }
    raw.update(overrides)
    return parse_config(raw)


ADULT_US = {"age": 30, "country": "us"}


def test_fixed_vectors() -> None:
    for salt, unit, expected in VECTORS:
        assert bucket(salt, unit) == expected, (salt, unit)


def test_xxh64_matches_reference_vectors() -> None:
    # Published XXH64 outputs (xxHash's own test values, as also used by ClickHouse and others).
    assert xxh64(b"") == 0xEF46DB3751D8E999
    assert xxh64(b"a") == 0xD24EC4F1A98C6E5B
    assert xxh64(b"abc") == 0x44BC2CF5AD770999
    assert xxh64(b"xxhash") == 0x32DD38952C4BC720
    assert xxh64(b"0") == 0x633457081244AFEC
    assert xxh64(b"", 0x1234567890ABCDEF) == 0xA2F5C44D0F46C872
    assert xxh64(b"0", 0x1234567890ABCDEF) == 0xF47EBF7F5CB6795B
    assert SEED == 42


def test_bucket_refuses_bad_input() -> None:
    with pytest.raises(TypeError, match="unit_id"):
        bucket("s", 42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="salt"):
        bucket(None, "u")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="salt"):
        bucket("a:b", "c")  # "a:b" + ":" + "c" == "a" + ":" + "b:c" otherwise
    with pytest.raises(ValueError, match="unit_id"):
        bucket("s", "\ud800")  # a lone surrogate has no UTF-8 encoding


def test_import_needs_neither_spark_nor_numpy() -> None:
    code = (
        "import sys\n"
        "for name in ('pyspark', 'numpy', 'pandas', 'scipy', 'yaml'):\n"
        "    sys.modules[name] = None  # any import of these now raises ImportError\n"
        "import datetime\n"
        "from ab_testing.assignment import assign\nfrom ab_testing.bucketing import bucket\n"
        "from ab_testing.config import parse_config\n"
        "cfg = parse_config({'version': 1, 'layers': [{'id': 'l', 'experiments': [{'id': 'e',"
        " 'start': '2026-01-01', 'end': '2026-02-01', 'buckets': [0, 10000], 'variants': ["
        "{'id': 'c', 'weight': 1, 'control': True}, {'id': 't', 'weight': 1}]}]}]})\n"
        "print(bucket('exp-checkout', 'user-1'), assign(cfg, 'u', on=datetime.date(2026, 1, 2)))\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, check=False
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("4098 (Assignment(experiment_id='e'")


@given(salt=SALTS, unit=st.text(max_size=80))
@settings(max_examples=300, deadline=None)
def test_bucket_is_stable_and_in_range(salt: str, unit: str) -> None:
    b = bucket(salt, unit)
    assert 0 <= b < N_BUCKETS
    assert bucket(salt, unit) == b
    assert b == (xxh64((salt + ":" + unit).encode(), 42) >> 1) % N_BUCKETS


@given(unit=st.text(max_size=40))
@settings(max_examples=100, deadline=None)
def test_assign_is_stable(unit: str) -> None:
    cfg = config()
    first = assign(cfg, unit, ADULT_US, on=DAY)
    assert assign(cfg, unit, ADULT_US, on=DAY) == first
    assert len({a.layer_id for a in first}) == len(first)  # at most one per layer


@given(salt=SALTS, prefix=st.sampled_from(["", "user-", "u_2026-01-"]))
@STAT
def test_buckets_are_uniform(salt: str, prefix: str) -> None:
    # Sequential ids are the adversarial case for a weak hash; 200k ids, 20 per bucket expected.
    counts = Counter(bucket(salt, f"{prefix}{i}") for i in range(200_000))
    observed = [counts.get(b, 0) for b in range(N_BUCKETS)]
    assert stats.chisquare(observed).pvalue > 0.001


@given(salts=st.lists(SALTS, min_size=2, max_size=2, unique=True))
@STAT
def test_buckets_are_independent_across_salts(salts: list[str]) -> None:
    # 4 arms per salt (quarters of the buckets): a 4x4 contingency table of 40k units.
    arms = Counter(
        (bucket(salts[0], str(i)) // 2500, bucket(salts[1], str(i)) // 2500) for i in range(40_000)
    )
    table = [[arms.get((a, b), 0) for b in range(4)] for a in range(4)]
    assert stats.chi2_contingency(table).pvalue > 0.001


def test_shares_follow_layers_weights_and_holdout() -> None:
    cfg = config()
    n = 40_000
    by_exp: Counter[str] = Counter()
    by_variant: Counter[tuple[str, str]] = Counter()
    held = 0
    for i in range(n):
        unit = str(i)
        got = assign(cfg, unit, ADULT_US, on=DAY)
        if in_holdout(cfg, unit):
            held += 1
            assert got == ()
        for a in got:
            by_exp[a.experiment_id] += 1
            by_variant[a.experiment_id, a.variant] += 1
            assert a.is_control == (a.variant == "control")
    assert stats.binomtest(held, n, 0.05).pvalue > 0.001
    kept = n - held
    # exp_a owns 30% of the ranking layer, exp_b 60%; exp_c all of the ui layer.
    assert stats.binomtest(by_exp["exp_a"], kept, 0.3).pvalue > 0.001
    assert stats.binomtest(by_exp["exp_b"], kept, 0.6).pvalue > 0.001
    assert by_exp["exp_c"] == kept
    c = [by_variant["exp_c", v] for v in ("control", "c1", "c2")]
    assert stats.chisquare(c, [kept / 4, kept / 4, kept / 2]).pvalue > 0.001


def test_layers_never_share_a_unit_and_ranges_pick_the_experiment() -> None:
    cfg = config()
    for i in range(5000):
        got = assign(cfg, str(i), ADULT_US, on=DAY)
        ranking = [a for a in got if a.layer_id == "ranking"]
        assert len(ranking) <= 1
        for a in ranking:
            lo, hi = (0, 3000) if a.experiment_id == "exp_a" else (3000, 9000)
            assert lo <= a.bucket < hi
            assert a.bucket == bucket("layer-ranking", str(i))
            assert a.variant_bucket == bucket("exp-" + a.experiment_id, str(i))


@given(percents=st.lists(st.integers(1, 100), min_size=2, max_size=5, unique=True))
@settings(max_examples=15, deadline=None)
def test_ramp_up_only_adds_units_and_never_moves_them(percents: list[int]) -> None:
    steps = sorted(percents)
    start = date(2026, 1, 1)
    raw_exp = experiment(
        "ramped",
        start.isoformat(),
        "2026-03-01",
        [2000, 7000],
        {"control": 1, "t1": 2, "t2": 3},
        ramp=[
            {"date": (start + timedelta(days=k)).isoformat(), "percent": p}
            for k, p in enumerate(steps)
        ],
    )
    cfg = parse_config({"version": 1, "layers": [layer("l", raw_exp)]})
    seen: dict[str, str] = {}
    for k, p in enumerate(steps):
        day = start + timedelta(days=k)
        now = {}
        for i in range(1000):
            a = assignment_for(cfg, "ramped", str(i), on=day)
            if a is not None:
                now[str(i)] = a.variant
        assert seen.items() <= now.items()  # nobody leaves, nobody changes arm
        assert cfg.experiments[0].live_range(day) == (2000, 2000 + 5000 * p // 100)
        seen = now


def test_targeting_gates_entry_without_freeing_the_buckets() -> None:
    cfg = config()
    for i in range(3000):
        unit = str(i)
        adult = {a.experiment_id for a in assign(cfg, unit, ADULT_US, on=DAY)}
        minor = {a.experiment_id for a in assign(cfg, unit, {"age": 12, "country": "us"}, on=DAY)}
        fr = {a.experiment_id for a in assign(cfg, unit, {"age": 40, "country": "fr"}, on=DAY)}
        missing = {a.experiment_id for a in assign(cfg, unit, {"country": "us"}, on=DAY)}
        assert minor == fr == missing == adult - {"exp_b"}


@pytest.mark.parametrize(
    ("flt", "attrs", "expected"),
    [
        (TargetingFilter("age", "eq", 30), {"age": 30}, True),
        (TargetingFilter("age", "eq", 30), {"age": 30.0}, True),
        (TargetingFilter("age", "in", (18, 30)), {"age": 31}, False),
        (TargetingFilter("age", "lt", 18), {"age": 17.5}, True),
        (TargetingFilter("age", "le", 18), {"age": 18}, True),
        (TargetingFilter("age", "gt", 18), {"age": 18}, False),
        (TargetingFilter("age", "ge", 18), {"age": float("nan")}, False),
        (TargetingFilter("age", "ge", 18), {"age": None}, False),
        (TargetingFilter("age", "ge", 18), {}, False),
        (TargetingFilter("country", "eq", "us"), {"country": "US"}, False),
        (TargetingFilter("beta", "eq", True), {"beta": True}, True),
        (TargetingFilter("beta", "eq", True), {"beta": False}, False),
    ],
)
def test_filter_semantics(flt: TargetingFilter, attrs: dict[str, object], expected: bool) -> None:
    assert matches(flt, attrs) is expected


@pytest.mark.parametrize(
    ("flt", "value"),
    [
        (TargetingFilter("age", "ge", 18), "30"),
        (TargetingFilter("age", "ge", 18), True),
        (TargetingFilter("country", "eq", "us"), 1),
        (TargetingFilter("beta", "eq", True), 1),
    ],
)
def test_attribute_of_the_wrong_kind_is_refused(flt: TargetingFilter, value: object) -> None:
    with pytest.raises(TypeError, match=flt.attribute):
        matches(flt, {flt.attribute: value})


def test_dates_bound_experiments_and_unknown_experiment_is_refused() -> None:
    cfg = config()
    assert assign(cfg, "7", ADULT_US, on=date(2025, 12, 31)) == ()
    assert assign(cfg, "7", ADULT_US, on=date(2026, 3, 1)) == ()
    with pytest.raises(ValueError, match="experiment_id"):
        assignment_for(cfg, "nope", "7", on=DAY)
    with pytest.raises(TypeError, match="unit_id"):
        assign(cfg, 7, on=DAY)  # type: ignore[arg-type]
