"""``python -m ab_testing.cli analyze``: generated data, Hillstrom, help and usage errors."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ab_testing.cli import main
from ab_testing.settings import DECISIONS

REPO = Path(__file__).resolve().parents[2]
# tests/ab_testing/<this file> -> parents[2] is the repository root.
HILLSTROM = REPO / ".." / "shared" / "data" / "hillstrom" / "hillstrom.csv"
MENS, NONE = "Mens E-Mail", "No E-Mail"


def _units(seed: int = 11, n: int = 800) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frames = []
    for arm, lift in (("control", 0.0), ("treatment", 0.5)):
        m = n + 10
        history = rng.gamma(2.0, 10.0, m)
        impressions = 1 + rng.poisson(4, m)
        frames.append(
            pd.DataFrame(
                {
                    "variant": arm,
                    "segment": ["rare"] * 10 + list(rng.choice(["web", "app"], n)),
                    "conversion": (rng.random(m) < 0.1 * (1 + lift)).astype(int),
                    "spend": 0.5 * history + rng.normal(0, 3, m) + lift,
                    "history": history,
                    "clicks": rng.binomial(impressions, 0.1),
                    "impressions": impressions,
                }
            )
        )
    df = pd.concat(frames, ignore_index=True)
    df.insert(0, "user_id", [f"uid{i:06d}z" for i in rng.permutation(len(df))])
    return df


@pytest.fixture(scope="module")
def units_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "exp-7.csv"
    _units().to_csv(path, index=False)
    return path


def _args(path: Path, out: Path, *extra: str) -> list[str]:
    return [
        "analyze",
        "--input",
        str(path),
        "--unit-col",
        "user_id",
        "--variant-col",
        "variant",
        "--control",
        "control",
        "--metric",
        "conversion:binomial",
        "--metric",
        "spend:mean",
        "--metric",
        "clicks/impressions:ratio",
        "--covariate",
        "spend=history",
        "--out",
        str(out),
        *extra,
    ]


def exit_2_error(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run the CLI on ``args``: it must exit 2 (a usage or input error); returns its stderr."""
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2
    return capsys.readouterr().err


def test_analyze_generated_csv(
    units_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert main(_args(units_csv, out, "--slice-col", "segment", "--start", "2024-05-01")) == 0
    printed = capsys.readouterr().out
    assert "SRM check passed" in printed
    assert "spend treatment: +" in printed
    assert "-> ship" in printed
    assert {p.name for p in out.iterdir()} == {
        "results.csv",
        "report.html",
        "report.md",
        "report-forest.svg",
    }
    results = pd.read_csv(out / "results.csv")
    assert list(results["slice"].unique()) == ["all", "segment=app", "segment=rare", "segment=web"]
    assert len(results) == 12
    assert set(results["experiment_id"]) == {"exp-7"}
    overall = results[results["slice"] == "all"].set_index("metric")
    assert overall.loc["spend", "method"] == "regression_hc1"
    assert overall.loc["clicks/impressions", "method"] == "delta_ratio"
    spend = overall.loc["spend"]
    assert spend["mean_variant_adjusted"] - spend["mean_control_adjusted"] == pytest.approx(
        spend["abs_lift"], rel=1e-9
    )
    assert spend["variance_reduction"] > 0.5
    for col in ("abs_se", "statistic", "df", "p_value", "p_value_adjusted", "p_value_sides"):
        assert col in results.columns
    assert (overall["abs_se"] > 0).all()
    assert set(overall["p_value_sides"]) == {"two-sided"}
    assert overall.loc["conversion", "n_control"] == 810
    rare = results[results["slice"] == "segment=rare"]
    assert set(rare["decision"]) == {"suppressed"}
    assert rare["mean_control"].isna().all()
    html = (out / "report.html").read_text(encoding="utf-8")
    assert 'id="forest-plot"' in html
    assert 'id="srm-banner"' not in html
    assert "2024-05-01 to ?" in html
    assert "suppressed (&lt; 50 units)" in html
    assert "spend adjusted by history" in html
    assert "units observed" not in printed  # passed: one line with the counts
    assert "SRM check passed (chi-square " in printed
    assert "control 810 (expected 810.0)" in printed


def test_no_unit_id_in_any_output(
    units_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    main(_args(units_csv, out, "--slice-col", "segment"))
    texts = [capsys.readouterr().out] + [p.read_text(encoding="utf-8") for p in out.iterdir()]
    ids = set(pd.read_csv(units_csv)["user_id"])
    for text in texts:
        assert "uid" not in text
        assert not any(uid in text for uid in ids)


def test_parquet_input_and_weights_override(
    units_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parquet = tmp_path / "exp.parquet"
    pd.read_csv(units_csv).to_parquet(parquet, index=False)
    out = tmp_path / "out"
    args = _args(parquet, out, "--weights", "control=0.8,treatment=0.2", "--experiment-id", "x1")
    assert main(args) == 0
    assert "SRM CHECK FAILED" in capsys.readouterr().out
    assert 'id="srm-banner"' in (out / "report.html").read_text(encoding="utf-8")
    results = pd.read_csv(out / "results.csv")
    assert set(results["decision"]) == {"srm_fail"}
    assert set(results["experiment_id"]) == {"x1"}


@pytest.mark.parametrize(
    ("replace", "extra", "message"),
    [
        ({"user_id": "uid"}, [], "column 'uid' (unit id) not found in exp-7.csv; its columns"),
        ({}, ["--metric", "revenue:mean"], "column 'revenue' (metric revenue:mean) not found"),
        ({"spend:mean": "spend:median"}, [], "KIND one of binomial, mean, ratio"),
        ({"clicks/impressions:ratio": "clicks:ratio"}, [], "NUM/DEN:ratio, got 'clicks:ratio'"),
        ({"spend:mean": "spend:binomial"}, [], "of a binomial metric must be 0 or 1"),
        ({"control": "ctrl"}, [], "control 'ctrl' is not a value of the variant column"),
        ({"spend=history": "visits=history"}, [], "covariates name metrics that are not analysed"),
        ({}, ["--weights", "control=1,treatment=0"], "weight of 'treatment' must be > 0"),
        ({}, ["--weights", "control=1"], "missing ['treatment']"),
        ({}, ["--alpha", "1.5"], "alpha must be in (0, 1), got 1.5"),
        ({}, ["--slice-col", "user_id"], "slice_col must not be the unit id column"),
        ({}, ["--correction", "bonferroni"], "invalid choice: 'bonferroni'"),
        ({}, ["--start", "June"], "argument --start: invalid fromisoformat value: 'June'"),
        ({}, ["--start", "2024-02-01", "--end", "2024-01-01"], "--start must be <= --end"),
        ({}, ["--min-units", "-1"], "min_units_per_slice must be >= 0, got -1"),
        ({}, ["--covariate", "spend=history"], "covariate spend=history is given twice"),
        ({}, ["--covariate", "spend=spend"], "spend=spend conflicts with the metric itself"),
        ({}, ["--covariate", "spend=variant"], "conflicts with the variant column"),
        ({}, ["--no-unit-col"], "argument --no-unit-col: not allowed with argument --unit-col"),
        ({"--unit-col": "--slice-col"}, [], "one of the arguments --unit-col --no-unit-col"),
    ],
)
def test_usage_errors_exit_2(
    units_csv: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    replace: dict[str, str],
    extra: list[str],
    message: str,
) -> None:
    args = [replace.get(a, a) for a in _args(units_csv, tmp_path / "out", *extra)]
    err = exit_2_error(args, capsys)
    assert message in err, err
    assert "usage: python -m ab_testing.cli analyze" in err
    assert not (tmp_path / "out").exists()


def test_duplicate_unit_ids_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    df = _units(n=60)
    ids = [str(u) for u in df["user_id"]]
    ids[1] = ids[0]
    df["user_id"] = ids
    path = tmp_path / "dup.csv"
    df.to_csv(path, index=False)
    err = exit_2_error(_args(path, tmp_path / "out"), capsys)
    assert "1 rows repeat an id" in err
    assert ids[0] not in err


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.csv", "", "cannot read empty.csv"),
        ("bad.parquet", "not parquet", "cannot read bad.parquet"),
        ("units.xlsx", "x", "must be a .csv, .csv.gz or .parquet file"),
    ],
)
def test_unreadable_input_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, content: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(content)
    assert message in exit_2_error(_args(path, tmp_path / "out"), capsys)
    with pytest.raises(SystemExit):
        main(_args(tmp_path / "missing.csv", tmp_path / "out"))
    assert "input file not found" in capsys.readouterr().err


def test_help_explains_flags_kinds_cuped_and_decisions() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "ab_testing.cli", "analyze", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    text = res.stdout
    assert "(--unit-col COL | --no-unit-col)" in " ".join(text.split())
    for flag in (
        "--input",
        "--unit-col",
        "--no-unit-col",
        "--labels",
        "--variant-col",
        "--control",
        "--metric",
        "--out",
        "--covariate",
        "--slice-col",
        "--weights",
        "--guardrail",
        "--lower-is-better",
        "--alpha",
        "--correction",
        "--min-units",
        "--srm-threshold",
        "--target-effect",
    ):
        assert flag in text
    for needle in ("binomial", "ratio", "NUM/DEN", "CUPED", "BEFORE the experiment", "e.g."):
        assert needle in text
    for decision in DECISIONS:
        assert f"\n  {decision} " in text


@pytest.fixture(scope="module")
def hillstrom_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not HILLSTROM.is_file():
        pytest.skip(f"Hillstrom data not found at {HILLSTROM.resolve()} (shared data not mounted)")
    out = tmp_path_factory.mktemp("hillstrom")
    base = ["analyze", "--input", str(HILLSTROM), "--no-unit-col"]
    base += ["--variant-col", "segment", "--control", NONE]
    cuped = ["--metric", "visit:binomial", "--metric", "conversion:binomial"]
    cuped += ["--metric", "spend:mean", "--covariate", "spend=history", "--out", str(out / "c")]
    assert main([*base, *cuped]) == 0
    assert main([*base, "--metric", "spend:mean", "--out", str(out / "welch")]) == 0
    return out


def test_hillstrom_published_figures(hillstrom_out: Path) -> None:
    results = pd.read_csv(hillstrom_out / "c" / "results.csv")
    assert len(results) == 6
    assert set(results["decision"]) == {"ship"}
    visit = results[(results.metric == "visit") & (results.variant == MENS)].iloc[0]
    assert visit["mean_variant"] == pytest.approx(0.182757, abs=1e-6)
    assert visit["n_variant"] == 21307
    assert visit["n_control"] == 21306
    spend = results[(results.metric == "spend") & (results.variant == MENS)].iloc[0]
    assert spend["method"] == "regression_hc1"
    html = (hillstrom_out / "c" / "report.html").read_text(encoding="utf-8")
    md = (hillstrom_out / "c" / "report.md").read_text(encoding="utf-8")
    for text in (html, md):
        assert "0.182757" in text
        assert "1.42262" in text
        assert "0.652789" in text
        assert "regression_hc1" in text


def test_hillstrom_welch_t_on_spend(hillstrom_out: Path) -> None:
    results = pd.read_csv(hillstrom_out / "welch" / "results.csv")
    spend = results[results.variant == MENS].iloc[0]
    assert spend["method"] == "welch_t"
    assert spend["p_value"] == pytest.approx(1.1638e-07, rel=1e-4)
    html = (hillstrom_out / "welch" / "report.html").read_text(encoding="utf-8")
    assert ">1.16e-07<" in html


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("spend", "inf", "column 'spend' (metric spend:mean) has 1 infinite values"),
        ("history", "-inf", "column 'history' (covariate of spend) has 1 infinite values"),
        ("spend", "Infinity", "column 'spend' (metric spend:mean) has 1 infinite values"),
        ("impressions", "1e400", "column 'impressions' (metric clicks/impressions:ratio) has 1 "),
        ("clicks", "9" * 400, "column 'clicks' (metric clicks/impressions:ratio) has 1 infinite"),
        ("spend", "1e200", "column 'spend' (metric spend:mean) has 1 values beyond +-1e+50"),
        ("history", "-1e51", "column 'history' (covariate of spend) has 1 values beyond +-1e+50"),
        ("spend", "nan", "column 'spend' (metric spend:mean) has 1 missing or non-numeric"),
        ("history", "abc", "column 'history' (covariate of spend) has 1 missing or non-numeric"),
        ("impressions", "NaN", "(metric clicks/impressions:ratio) has 1 missing or non-numeric"),
        ("spend", "12,5", "column 'spend' (metric spend:mean) has 1 missing or non-numeric"),
        ("conversion", "2", "of a binomial metric must be 0 or 1; first other at row 5"),
    ],
)
def test_non_finite_or_overflowing_values_exit_2_naming_column_and_row(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], column: str, value: str, message: str
) -> None:
    df = _units(n=60).astype({column: object})
    df.loc[4, column] = value  # data row 5 (line 6 of the file)
    path = tmp_path / "bad.csv"
    df.to_csv(path, index=False)
    err = exit_2_error(_args(path, tmp_path / "out"), capsys)
    assert message in err, err
    assert "row 5 (value " in err, err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_non_finite_parquet_value_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    df = _units(n=60)
    df.loc[9, "history"] = float("inf")
    path = tmp_path / "bad.parquet"
    df.to_parquet(path, index=False)
    err = exit_2_error(_args(path, tmp_path / "out"), capsys)
    assert "column 'history' (covariate of spend) has 1 infinite values" in err
    assert "row 10 (value inf)" in err


def test_values_up_to_the_bound_analyse_without_overflow(tmp_path: Path) -> None:
    # Just inside the bound every sum, variance and power term of the engine stays finite.
    df = _units(n=60)
    n = len(df)
    df["spend"] = [1e49 * (1 + i % 7) * (-1) ** i for i in range(n)]
    df["history"] = [1e49 * (1 + i % 5) for i in range(n)]
    df["clicks"] = [1e49 * (1 + i % 7) for i in range(n)]
    df["impressions"] = [1e49 * (1 + i % 3) for i in range(n)]
    path = tmp_path / "huge.csv"
    df.to_csv(path, index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        assert main(_args(path, tmp_path / "out")) == 0
    assert (tmp_path / "out" / "results.csv").exists()


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(args) == 0
    return capsys.readouterr().out


def test_uninformative_covariate_keeps_the_test_family(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Friction 1: a covariate that explains nothing changes nothing but its variance reduction.
    df = _units(n=4000)
    df["noise"] = np.random.default_rng(5).normal(size=len(df))
    path = tmp_path / "u.csv"
    df.to_csv(path, index=False)
    out = tmp_path / "out"
    printed = _run(_args(path, out, "--covariate", "conversion=noise"), capsys)
    res = pd.read_csv(out / "results.csv").set_index("metric")
    conv = res.loc["conversion"]
    assert conv["method"] == "regression_hc1"
    assert abs(conv["variance_reduction"]) < 0.003
    # same variance family: SE and z move by the covariate's noise only (p is ~1e-7 here,
    # where a 1 % change of z moves p by ~15 %)
    assert conv["abs_se"] == pytest.approx(conv["abs_se_unadjusted"], rel=0.003)
    z_unadjusted = conv["abs_lift_unadjusted"] / conv["abs_se_unadjusted"]
    assert conv["statistic"] == pytest.approx(z_unadjusted, rel=0.01)
    assert "regression_hc1 on noise: variance reduction" in printed


def test_several_covariates_per_metric_and_missing_values_filled(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Friction 2: a repeat adds a covariate; missing values are filled (mean + indicator).
    df = _units(n=300)
    df["noise"] = np.random.default_rng(6).normal(size=len(df))
    df.loc[df.index[:7], "history"] = np.nan  # 7 control units
    df.loc[df.index[-3:], "history"] = np.nan  # 3 treatment units
    path = tmp_path / "m.csv"
    df.to_csv(path, index=False)
    out = tmp_path / "out"
    printed = _run(_args(path, out, "--covariate", "spend=noise"), capsys)
    spend = pd.read_csv(out / "results.csv").set_index("metric").loc["spend"]
    assert spend["method"] == "regression_hc1"
    assert spend["covariates"] == "('history', 'noise', 'history:missing')"
    assert "('history', 7)" in spend["n_filled_control"]
    assert "('history', 3)" in spend["n_filled_variant"]
    assert "filled with the mean + indicator: history 7 control / 3 treatment units" in printed
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "spend adjusted by history, noise" in md


def test_no_unit_col_is_explicit_and_reported(
    tmp_path: Path, units_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Friction 3: without an id column the outputs say that uniqueness was not checked.
    args = _args(units_csv, tmp_path / "out")
    i = args.index("--unit-col")
    args[i : i + 2] = ["--no-unit-col"]
    printed = _run(args, capsys)
    assert printed.startswith("unit ids NOT checked")
    for name in ("report.md", "report.html"):
        text = (tmp_path / "out" / name).read_text(encoding="utf-8")
        assert "uniqueness of units was not checked" in text


@pytest.mark.parametrize(("treated", "ratio"), [(1600, "1:2"), (7290, "1:9")])
def test_srm_shows_counts_and_suggests_weights(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], treated: int, ratio: str
) -> None:
    # Friction 4: a deliberate unequal split analysed with equal weights.
    rng = np.random.default_rng(3)
    n = 810 + treated
    df = pd.DataFrame(
        {
            "user_id": [f"u{i}" for i in range(n)],
            "variant": ["control"] * 810 + ["treatment"] * treated,
            "spend": rng.normal(10, 2, n),
        }
    )
    path = tmp_path / "srm.csv"
    df.to_csv(path, index=False)
    base = ["analyze", "--input", str(path), "--unit-col", "user_id", "--variant-col"]
    base += ["variant", "--control", "control", "--metric", "spend:mean"]
    printed = _run([*base, "--out", str(tmp_path / "a")], capsys)
    half = (810 + treated) / 2
    assert "SRM CHECK FAILED (chi-square " in printed
    assert f"control 810 (expected {half:.1f}), treatment {treated}" in printed
    weights = f"control={ratio[0]},treatment={ratio[2:]}"
    assert f"close to {ratio}; if that split was intended, pass --weights {weights}" in printed
    assert "--weights" in (tmp_path / "a" / "report.md").read_text(encoding="utf-8")
    printed = _run([*base, "--weights", weights, "--out", str(tmp_path / "b")], capsys)
    assert "SRM check passed" in printed


def test_srm_failure_without_simple_ratio_has_no_weights_hint() -> None:
    from ab_testing.cli import simple_ratio, srm_lines

    assert simple_ratio([1000, 1200]) is None
    assert simple_ratio([1000, 1500]) == (2, 3)
    lines = srm_lines({"a": 1000.0, "b": 1200.0}, {"a": 1.0, "b": 1.0}, 0.001)
    assert lines[0].startswith("SRM CHECK FAILED")
    assert not any("--weights" in line for line in lines)


def test_terminal_labels_raw_and_adjusted_p(
    units_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Friction 5: raw and adjusted p labelled; "adjusted" absent with --correction none.
    printed = _run(_args(units_csv, tmp_path / "h"), capsys)
    assert "p (two-sided) " in printed
    assert "holm-adjusted p " in printed
    printed = _run(_args(units_csv, tmp_path / "n", "--correction", "none"), capsys)
    assert "p (two-sided) " in printed
    assert "adjusted p" not in printed.replace("unadjusted p", "")
    guard = _args(units_csv, tmp_path / "g", "--guardrail", "spend=0.05")
    assert "non-inferiority p (one-sided) " in _run(guard, capsys)


def test_neutral_labels(
    units_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    printed = _run(_args(units_csv, tmp_path / "o", "--labels", "neutral"), capsys)
    assert "-> positive" in printed
    assert "-> ship" not in printed
