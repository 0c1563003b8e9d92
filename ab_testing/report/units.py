"""Unit-level exports (one row per randomisation unit) reduced to the engine's inputs.

Used by :mod:`ab_testing.cli` to analyse experiments run elsewhere: the file is read with
pandas/pyarrow, validated, and aggregated per (slice, variant) with the sufficient-statistics
``from_array(s)`` constructors.  Unit ids are only checked for uniqueness, then dropped.
"""

from __future__ import annotations

import csv
import gzip
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from ab_testing.settings import METRIC_KINDS, OVERALL_SLICE, MetricKind
from ab_testing.stats.experiment import Cell, ExperimentData, MetricSpec
from ab_testing.stats.moments import RegressionStats
from ab_testing.stats.sufficient import AnyStats, RatioStats, SampleStats

_VARIANT, _SLICE = "__variant", "__slice"


class UnitDataError(ValueError):
    """The unit-level data or its description is unusable; the message says why."""


@dataclass(frozen=True, slots=True)
class UnitMetric:
    """A metric read from unit-level columns: ``columns`` is (value,) or (numerator,
    denominator) for ratio metrics."""

    name: str
    kind: MetricKind
    columns: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> UnitMetric:
        """Parse ``NAME:KIND`` (``NUM/DEN:ratio`` for ratio metrics); ValueError if invalid."""
        name, sep, kind = text.rpartition(":")
        if not sep or not name or kind not in METRIC_KINDS:
            raise ValueError(
                f"metric must be NAME:KIND with KIND one of {', '.join(METRIC_KINDS)}, got {text!r}"
            )
        if kind == "ratio":
            num, slash, den = name.partition("/")
            if not slash or not num or not den:
                raise ValueError(f"a ratio metric must be NUM/DEN:ratio, got {text!r}")
            return cls(name, "ratio", (num, den))
        return cls(name, "binomial" if kind == "binomial" else "mean", (name,))


@dataclass(frozen=True, slots=True)
class UnitSchema:
    """How to read an experiment from unit-level columns.

    Attributes:
        unit_col: unit id column (one row per unit), checked for uniqueness; None when the
            data has no id column (each row is then taken to be one unit).
        variant_col: assigned-variant column.
        control: the control's value in ``variant_col``.
        metrics: metrics to analyse.
        covariates: pre-experiment covariate columns per metric name (any number, each
            column once per metric; a string is one column, stored as a 1-tuple).  The
            metric is then regression-adjusted (Lin's interacted OLS, HC1 SE).  Missing
            covariate values are filled with the mean and get a missing indicator (see
            docs/stats-regression.md).
        slice_col: optional column whose values are analysed as separate slices.
        weights: intended traffic split per variant; None means equal for those present.
        guardrails: relative non-inferiority margin (> 0) per guardrail metric name.
        lower_is_better: names of metrics whose decrease is good.
    """

    unit_col: str | None
    variant_col: str
    control: str
    metrics: Sequence[UnitMetric]
    covariates: Mapping[str, str | Sequence[str]] = field(default_factory=dict)
    slice_col: str | None = None
    weights: Mapping[str, float] | None = None
    guardrails: Mapping[str, float] = field(default_factory=dict)
    lower_is_better: Sequence[str] = ()

    def __post_init__(self) -> None:
        names = [m.name for m in self.metrics]
        if not names:
            raise UnitDataError("metrics must be non-empty, got []")
        if len(set(names)) != len(names):
            raise UnitDataError(f"metric names must be unique, got {names!r}")
        for what, keys in (
            ("covariates", self.covariates),
            ("guardrails", self.guardrails),
            ("lower_is_better", self.lower_is_better),
        ):
            unknown = sorted(set(keys) - set(names))
            if unknown:
                raise UnitDataError(f"{what} name metrics that are not analysed: {unknown!r}")
        by_name = {m.name: m for m in self.metrics}
        labels: dict[str | None, str] = {self.variant_col: "the variant"}
        labels |= {self.unit_col: "the unit id", self.slice_col: "the slice"}
        covariates = {
            m: (c,) if isinstance(c, str) else tuple(c) for m, c in self.covariates.items()
        }
        object.__setattr__(self, "covariates", covariates)
        for metric, cols in covariates.items():
            seen: set[str] = set()
            for c in cols:
                if c in seen:
                    raise UnitDataError(
                        f"covariate {metric}={c} is given twice; name each column once"
                    )
                seen.add(c)
                if c in by_name[metric].columns:
                    raise UnitDataError(
                        f"covariate {metric}={c} conflicts with the metric itself: a covariate "
                        "must be measured before the experiment"
                    )
                if c in labels:
                    raise UnitDataError(
                        f"covariate {metric}={c} conflicts with {labels[c]} column"
                    )
        if self.slice_col is not None and self.slice_col == self.unit_col:
            raise UnitDataError(
                f"slice_col must not be the unit id column, got {self.slice_col!r}: slices "
                "are groups of units"
            )

    def columns(self) -> dict[str, str]:
        """Each column the schema reads, with its role (for error messages)."""
        cols = {self.variant_col: "variant"}
        if self.unit_col is not None:
            cols = {self.unit_col: "unit id", **cols}
        for m in self.metrics:
            for c in m.columns:
                cols.setdefault(c, f"metric {m.name}:{m.kind}")
        for metric, covs in self.covariates.items():
            for c in (covs,) if isinstance(covs, str) else covs:
                cols.setdefault(c, f"covariate of {metric}")
        if self.slice_col is not None:
            cols.setdefault(self.slice_col, "slice")
        return cols

    def specs(self) -> list[MetricSpec]:
        """Engine metric definitions."""
        return [
            MetricSpec(
                m.name,
                m.kind,
                guardrail=m.name in self.guardrails,
                margin=self.guardrails.get(m.name),
                higher_is_better=m.name not in self.lower_is_better,
            )
            for m in self.metrics
        ]


def _csv_header(path: Path) -> list[str]:
    """The header's names, after checking the file's shape with the ``csv`` module (one pass).

    pandas hides two malformations: it renames a repeated header name (``spend``, ``spend.1``)
    and reads the first column of that name, and with ``usecols`` it drops the extra fields of
    a row that has more fields than the header; its C parser also ends a field at a NUL byte
    (``1\\x002`` reads as 1). All three are refused here.

    Raises UnitDataError naming the column or the row; decoding and gzip errors propagate.
    """
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8-sig", newline="") as f:
        rows = csv.reader(f)
        header = next(rows, [])
        repeated = sorted({c for c in header if header.count(c) > 1})
        if repeated:
            raise UnitDataError(
                f"column {repeated[0]!r} appears {header.count(repeated[0])} times in the header "
                f"of {path.name}; column names must be distinct"
            )
        row = 0
        for fields in rows:
            if not fields:  # a blank line (pandas skips it too)
                continue
            row += 1
            if len(fields) > len(header):
                raise UnitDataError(
                    f"row {row} of {path.name} has {len(fields)} fields, the header has "
                    f"{len(header)}"
                )
            if "\x00" in "".join(fields):
                col = next(i for i, v in enumerate(fields) if "\x00" in v)
                raise UnitDataError(
                    f"row {row} of {path.name} holds a NUL byte in column "
                    f"{header[col] if col < len(header) else col + 1!r}"
                )
    return header


#: What reading a malformed file raises: parser, Arrow and decoding errors are ValueErrors,
#: a bad gzip stream is an OSError, a truncated one an EOFError.
_READ_ERRORS: Final = (ValueError, OSError, EOFError, csv.Error)


def read_units(path: Path, schema: UnitSchema) -> pd.DataFrame:
    """Read the schema's columns of a .csv, .csv.gz or .parquet file.

    Raises UnitDataError naming any missing or repeated column and its role, a row with more
    fields than the header, or why the file cannot be read.
    """
    name = path.name.lower()
    if not path.is_file():
        raise UnitDataError(f"input file not found: {path}")
    parquet = name.endswith((".parquet", ".pq"))
    if not parquet and not name.endswith((".csv", ".csv.gz")):
        raise UnitDataError(f"input must be a .csv, .csv.gz or .parquet file, got {path.name!r}")
    try:
        if parquet:
            import pyarrow.parquet as pq

            available = list(pq.read_schema(path).names)
            repeated = sorted({c for c in available if available.count(c) > 1})
            if repeated:
                raise UnitDataError(
                    f"column {repeated[0]!r} appears {available.count(repeated[0])} times in "
                    f"{path.name}; column names must be distinct"
                )
        else:
            _csv_header(path)
            available = [str(c) for c in pd.read_csv(path, nrows=0).columns]
    except UnitDataError:
        raise
    except _READ_ERRORS as exc:
        raise UnitDataError(f"cannot read {path.name}: {exc}") from None
    needed = schema.columns()
    missing = [f"{c!r} ({role})" for c, role in needed.items() if c not in available]
    if missing:
        shown = ", ".join(map(repr, available[:30])) + (", ..." if len(available) > 30 else "")
        raise UnitDataError(
            f"column {', '.join(missing)} not found in {path.name}; its columns are {shown}"
        )
    labels = [c for c in (schema.unit_col, schema.variant_col, schema.slice_col) if c]
    try:
        if parquet:
            return pd.read_parquet(path, columns=list(needed))
        return pd.read_csv(path, usecols=list(needed), dtype=dict.fromkeys(labels, "string"))
    except _READ_ERRORS as exc:
        raise UnitDataError(f"cannot read {path.name}: {exc}") from None


#: Largest magnitude a metric or covariate value may have. The engine sums values, their squares
#: and products over every unit and multiplies variances by squared means (power, delta method);
#: far below this bound all of that stays finite, beyond it a value is refused with its row
#: instead of overflowing to infinity inside the engine.
MAX_ABS_VALUE: Final = 1e50


def _first_bad(raw: pd.Series[Any], bad: npt.NDArray[np.bool_]) -> str:
    """``row N (value V)`` of the first True in ``bad``: 1-based data row, header excluded."""
    i = int(np.argmax(bad))
    shown = repr(raw.iloc[i])
    return f"row {i + 1} (value {shown if len(shown) <= 40 else shown[:37] + '...'})"


def _numeric(
    df: pd.DataFrame, col: str, role: str, binary: bool, allow_missing: bool = False
) -> npt.NDArray[np.float64]:
    """The column as finite floats; UnitDataError naming the column and the first bad row.

    Refused: missing or non-numeric values (``nan`` spelled out included), ``inf``/``-inf`` and
    numbers beyond float64 (``1e400``), and values whose magnitude exceeds :data:`MAX_ABS_VALUE`.
    With ``allow_missing`` (covariates) an empty cell or NaN is kept as NaN (the engine fills
    it with the mean plus a missing indicator); text that is not a number is still refused.
    """
    raw = df[col]
    try:
        values = pd.to_numeric(raw, errors="coerce").astype("float64").to_numpy()
    except (TypeError, ValueError, OverflowError):  # e.g. integers beyond float64
        values = np.array([_to_float(v) for v in raw], dtype=np.float64)
    unparsed = np.isnan(values) & raw.notna().to_numpy()
    if unparsed.any():  # "1e400" or a 400-digit integer: a number, but beyond float64
        values = values.copy()
        values[unparsed] = [_to_float(v) for v in raw[unparsed]]
    missing = np.isnan(values)
    if allow_missing:
        missing &= raw.notna().to_numpy()
    if missing.any():
        raise UnitDataError(
            f"column {col!r} ({role}) has {int(missing.sum())} missing or non-numeric values; "
            f"first at {_first_bad(raw, missing)}"
        )
    infinite = np.isinf(values)
    if infinite.any():
        raise UnitDataError(
            f"column {col!r} ({role}) has {int(infinite.sum())} infinite values (or beyond "
            f"float64); first at {_first_bad(raw, infinite)}"
        )
    huge = np.abs(np.nan_to_num(values)) > MAX_ABS_VALUE
    if huge.any():
        raise UnitDataError(
            f"column {col!r} ({role}) has {int(huge.sum())} values beyond +-{MAX_ABS_VALUE:g} "
            "(the engine's sums of squares and products would overflow); "
            f"first at {_first_bad(raw, huge)}"
        )
    if binary and not np.isin(values, (0.0, 1.0)).all():
        raise UnitDataError(
            f"column {col!r} ({role}) of a binomial metric must be 0 or 1; first other at "
            f"{_first_bad(raw, ~np.isin(values, (0.0, 1.0)))}"
        )
    return values.astype(np.float64)


def _to_float(value: object) -> float:
    """One cell as a float: NaN when it is not a number, +-inf when it overflows float64."""
    try:
        return float(value)  # type: ignore[arg-type]
    except OverflowError:
        return math.copysign(math.inf, int(value))  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return math.nan


def _check_ids(ids: pd.Series[str], col: str) -> None:
    if ids.isna().any():
        raise UnitDataError(f"unit id column {col!r} has {int(ids.isna().sum())} missing ids")
    dup = int(ids.duplicated().sum())
    if dup:
        # Privacy: the count only, never the ids themselves.
        raise UnitDataError(
            f"unit id column {col!r} must hold one row per unit; {dup} rows repeat an id "
            "(aggregate to one row per unit first)"
        )


def _validated(df: pd.DataFrame, schema: UnitSchema) -> pd.DataFrame:
    """Numeric metric/covariate columns plus variant and slice labels; no unit ids."""
    if df.empty:
        raise UnitDataError("the input has no rows")
    if schema.unit_col is not None:
        _check_ids(df[schema.unit_col], schema.unit_col)
    variant = df[schema.variant_col]
    if variant.isna().any():
        raise UnitDataError(
            f"variant column {schema.variant_col!r} has {int(variant.isna().sum())} missing values"
        )
    out = pd.DataFrame({_VARIANT: variant.astype(str).to_numpy()})
    present = sorted(set(out[_VARIANT]))
    if schema.control not in present:
        raise UnitDataError(
            f"control {schema.control!r} is not a value of the variant column "
            f"{schema.variant_col!r}; its values are {present!r}"
        )
    if len(present) < 2:
        raise UnitDataError(
            f"variant column {schema.variant_col!r} has one variant only: {present!r}"
        )
    binary = {c for m in schema.metrics if m.kind == "binomial" for c in m.columns}
    for col, role in schema.columns().items():
        if role.startswith(("metric", "covariate")):
            allow = role.startswith("covariate")
            out[col] = _numeric(df, col, role, binary=col in binary, allow_missing=allow)
    if schema.slice_col is not None:
        labels = df[schema.slice_col].astype("string").fillna("(missing)")
        out[_SLICE] = (schema.slice_col + "=" + labels).to_numpy()
    return out


def _stats(
    frame: pd.DataFrame, metric: UnitMetric, covariates: str | Sequence[str]
) -> AnyStats:
    """One arm's statistics: regression moments (exact HC1) when the metric has covariates,
    so adjusted and unadjusted results share one variance family."""
    values = [frame[c].to_numpy(dtype=np.float64) for c in metric.columns]
    if not covariates:
        if metric.kind == "ratio":
            return RatioStats.from_arrays(values[0], values[1])
        return SampleStats.from_array(values[0])
    covariates = (covariates,) if isinstance(covariates, str) else covariates
    xs = np.stack([frame[c].to_numpy(dtype=np.float64) for c in covariates])
    den = values[1] if metric.kind == "ratio" else None
    return RegressionStats.from_arrays(values[0], xs, list(covariates), den=den)


def experiment_from_units(
    df: pd.DataFrame, schema: UnitSchema, experiment_id: str
) -> ExperimentData:
    """Validate unit-level rows and aggregate them into the engine's :class:`ExperimentData`:
    one cell per (slice, metric, variant), overall slice first, and the units per variant
    as the SRM assignment counts.  Raises UnitDataError on unusable data."""
    units = _validated(df, schema)
    groups: list[tuple[str, pd.DataFrame]] = [(OVERALL_SLICE, units)]
    if _SLICE in units:
        groups += [(str(k), g) for k, g in units.groupby(_SLICE, sort=True)]
    cells = [
        Cell(str(variant), m.name, _stats(arm, m, schema.covariates.get(m.name, ())), slice_)
        for slice_, frame in groups
        for variant, arm in frame.groupby(_VARIANT, sort=True)
        for m in schema.metrics
    ]
    counts = {str(k): float(v) for k, v in units[_VARIANT].value_counts().items()}
    weights = dict(schema.weights) if schema.weights else dict.fromkeys(sorted(counts), 1.0)
    unweighted = sorted(set(counts) - set(weights))
    if unweighted:
        raise UnitDataError(
            f"weights must give every variant in the data a weight; missing {unweighted!r}"
        )
    if schema.control not in weights:
        raise UnitDataError(f"weights must include the control {schema.control!r}")
    for name, w in weights.items():
        if not (math.isfinite(w) and w > 0):
            raise UnitDataError(f"weights[{name!r}] must be > 0, got {w!r}")
    return ExperimentData(
        experiment_id=experiment_id,
        control=schema.control,
        expected_weights=weights,
        metrics=schema.specs(),
        cells=cells,
        assignment_counts=counts,
    )
