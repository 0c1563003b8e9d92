"""Line-level parsing and validation of MovieLens files, as native Spark expressions.

Every function maps a DataFrame of raw lines (``source_file``, ``raw_line``, ``valid_utf8``) to
typed columns plus ``reason``/``detail``: NULL reason means the line is good, otherwise the first
check it failed (:class:`recsys.settings.Reason`). Nothing here drops a row; set-level checks
(duplicates, unknown ids) live in :mod:`recsys.ingest.pipeline`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Final

from pyspark.sql import Column
from pyspark.sql import functions as F

from recsys.ingest.layouts import ML1M_OCCUPATIONS, ML100K_GENRES, FileSpec
from recsys.settings import Reason
from recsys.warehouse.tables import Col

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

FIELDS: Final = "_fields"
META: Final[tuple[str, ...]] = (Col.SOURCE_FILE, Col.RAW_LINE, Col.REASON, Col.DETAIL)

# One CSV field, starting at the line start or right after a comma: a quoted field with ""
# escapes, or anything up to the next comma. The lookbehind (not a consumed comma) keeps empty
# fields: after an empty match the regex engine moves one character on, which would skip a comma.
_CSV_FIELD: Final = r'(?<=^|,)("(?:[^"]|"")*"|[^,]*)'
_SPLIT_REGEX: Final = {"\t": "\t", "|": r"\|", "::": "::"}
_TITLE_YEAR: Final = r"^(.*?)\s*\((\d{4})(?:[-–]\d{0,4})?\)\s*$"
_NO_GENRES: Final = "(no genres listed)"


def decode(lines: DataFrame, spec: FileSpec) -> DataFrame:
    """``(source_file, value)`` lines -> ``(source_file, raw_line, valid_utf8)``, header removed.

    Latin-1 files are decoded from their bytes; UTF-8 files are checked and invalid byte
    sequences replaced by U+FFFD in ``raw_line`` so the quarantine can still show the line.
    """
    if spec.latin1:
        raw = F.decode(F.col("value").cast("binary"), "ISO-8859-1")
        valid = F.lit(True)
    else:
        raw = F.make_valid_utf8(F.col("value"))
        valid = F.is_valid_utf8(F.col("value"))
    out = lines.select(
        F.col(Col.SOURCE_FILE),
        F.regexp_replace(raw, "^\ufeff", "").alias(Col.RAW_LINE),
        valid.alias("valid_utf8"),
    )
    if spec.header is not None:
        out = out.where(F.col(Col.RAW_LINE) != F.lit(spec.header))
    return out


def split_fields(spec: FileSpec) -> Column:
    """The line's fields as ``array<string>`` (CSV fields unquoted)."""
    line = F.col(Col.RAW_LINE)
    if spec.separator != "csv":
        return F.split(line, _SPLIT_REGEX[spec.separator], -1)
    tokens = F.regexp_extract_all(line, F.lit(_CSV_FIELD), 1)
    return F.transform(tokens, _unquote)


def _unquote(token: Column) -> Column:
    quoted = token.startswith('"') & token.endswith('"') & (F.length(token) >= 2)
    body = F.regexp_extract(token, r'^"(.*)"$', 1)
    return F.when(quoted, F.regexp_replace(body, '""', '"')).otherwise(token)


def _csv_quoting_ok(spec: FileSpec) -> Column:
    # Two ways a line's quoting is malformed: tokens re-joined do not give the line back (text
    # was skipped between tokens, as in `1,"Toy"x,Comedy`), or a token holds a quote without
    # being one well-formed quoted field (as in `1,"31,2.5`).
    if spec.separator != "csv":
        return F.lit(True)
    tokens = F.regexp_extract_all(F.col(Col.RAW_LINE), F.lit(_CSV_FIELD), 1)
    stray_quote = F.exists(tokens, lambda t: t.contains('"') & ~t.rlike(r'^"(?:[^"]|"")*"$'))
    return (F.array_join(tokens, ",") == F.col(Col.RAW_LINE)) & ~stray_quote


def field(spec: FileSpec, name: str) -> Column:
    """Trimmed text of field ``name`` (NULL when the line is too short)."""
    return F.trim(F.get(F.col(FIELDS), spec.fields.index(name)))


def _first_failure(checks: Sequence[tuple[Column, Reason, Column]]) -> tuple[Column, Column]:
    reason: Column = F.lit(None).cast("string")
    detail: Column = F.lit(None).cast("string")
    for condition, why, what in reversed(checks):
        reason = F.when(condition, F.lit(why.value)).otherwise(reason)
        detail = F.when(condition, what).otherwise(detail)
    return reason, detail


def _common_checks(spec: FileSpec) -> list[tuple[Column, Reason, Column]]:
    n_fields = F.size(F.col(FIELDS))
    return [
        (~F.col("valid_utf8"), Reason.INVALID_UTF8, F.lit("line is not valid UTF-8")),
        # Valid UTF-8, but never text: a NUL would reach titles and explanations unseen.
        (
            F.col(Col.RAW_LINE).contains("\x00"),
            Reason.INVALID_VALUE,
            F.lit("line holds a NUL byte (U+0000)"),
        ),
        (~_csv_quoting_ok(spec), Reason.MALFORMED_QUOTING, F.lit("unbalanced CSV quoting")),
        (
            n_fields != F.lit(len(spec.fields)),
            Reason.WRONG_FIELD_COUNT,
            F.concat(F.lit(f"expected {len(spec.fields)} fields, got "), n_fields.cast("string")),
        ),
    ]


def _required(spec: FileSpec, names: Sequence[str]) -> list[tuple[Column, Reason, Column]]:
    return [
        ((field(spec, n) == F.lit("")), Reason.NULL_FIELD, F.lit(n + " is empty")) for n in names
    ]


def _id_checks(spec: FileSpec, names: Sequence[str]) -> list[tuple[Column, Reason, Column]]:
    checks = []
    for name in names:
        parsed = field(spec, name).try_cast("bigint")
        checks.append(
            (
                parsed.isNull(),
                Reason.UNPARSEABLE_NUMBER,
                F.concat(F.lit(name + " is not an integer: "), field(spec, name)),
            )
        )
        checks.append((parsed < F.lit(0), Reason.INVALID_VALUE, F.lit(name + " is negative")))
    return checks


def _epoch_checks(spec: FileSpec, max_epoch: int) -> list[tuple[Column, Reason, Column]]:
    raw = field(spec, "timestamp")
    epoch = raw.try_cast("bigint")
    return [
        (
            epoch.isNull(),
            Reason.UNPARSEABLE_TIMESTAMP,
            F.concat(F.lit("timestamp is not epoch seconds: "), raw),
        ),
        (
            (epoch < F.lit(0)) | (epoch > F.lit(max_epoch)),
            Reason.TIMESTAMP_OUT_OF_RANGE,
            F.concat(F.lit("timestamp outside [1970-01-01, delivery date + 1 day]: "), raw),
        ),
    ]


def max_event_epoch(ds: date) -> int:
    """Latest acceptable event time for a delivery dated ``ds``: the end of the next day, UTC."""
    return int(datetime.combine(ds + timedelta(days=2), time(), tzinfo=UTC).timestamp()) - 1


def _classified(
    lines: DataFrame,
    spec: FileSpec,
    checks: list[tuple[Column, Reason, Column]],
    values: dict[str, Column],
) -> DataFrame:
    reason, detail = _first_failure(checks)
    staged = lines.withColumn(FIELDS, split_fields(spec))
    return staged.select(
        *[F.when(reason.isNull(), value).alias(name) for name, value in values.items()],
        F.col(Col.SOURCE_FILE),
        F.col(Col.RAW_LINE),
        reason.alias(Col.REASON),
        detail.alias(Col.DETAIL),
    )


def parse_ratings(lines: DataFrame, spec: FileSpec, ds: date) -> DataFrame:
    """Rating lines -> user_id, item_id, rating, event_ts (+ META)."""
    lo, hi = spec.rating_range
    rating = field(spec, "rating").try_cast("double")
    checks = [
        *_common_checks(spec),
        *_required(spec, spec.fields),
        *_id_checks(spec, ("user_id", "item_id")),
        (
            rating.isNull() | F.isnan(rating) | (F.abs(rating) == F.lit(float("inf"))),
            Reason.UNPARSEABLE_NUMBER,
            F.concat(F.lit("rating is not a number: "), field(spec, "rating")),
        ),
        (
            (rating < F.lit(lo)) | (rating > F.lit(hi)),
            Reason.RATING_OUT_OF_RANGE,
            F.concat(F.lit(f"rating outside [{lo}, {hi}]: "), field(spec, "rating")),
        ),
        *_epoch_checks(spec, max_event_epoch(ds)),
    ]
    values = {
        Col.USER_ID: field(spec, "user_id").try_cast("bigint"),
        Col.ITEM_ID: field(spec, "item_id").try_cast("bigint"),
        Col.RATING: rating,
        Col.EVENT_TS: F.timestamp_seconds(field(spec, "timestamp").try_cast("bigint")),
    }
    return _classified(lines, spec, checks, values)


def _title_and_year(spec: FileSpec) -> tuple[Column, Column]:
    title = field(spec, "title")
    has_year = title.rlike(_TITLE_YEAR)
    clean = F.when(has_year, F.regexp_extract(title, _TITLE_YEAR, 1)).otherwise(title)
    year = F.when(has_year, F.regexp_extract(title, _TITLE_YEAR, 2).cast("int"))
    if "release_date" in spec.fields:
        # ml-100k: "01-Jan-1995"; used when the title carries no year.
        released = F.regexp_extract(field(spec, "release_date"), r"(\d{4})$", 1)
        year = F.coalesce(year, F.when(released != F.lit(""), released.cast("int")))
    return clean, year


def _genres(spec: FileSpec) -> tuple[Column, list[tuple[Column, Reason, Column]]]:
    if "genres" in spec.fields:
        raw = field(spec, "genres")
        genres = F.when(raw == F.lit(_NO_GENRES), F.array().cast("array<string>")).otherwise(
            F.split(raw, r"\|", -1)
        )
        genres = F.transform(genres, lambda g: F.regexp_replace(g, "Children's", "Children"))
        return genres, [(raw == F.lit(""), Reason.NULL_FIELD, F.lit("genres is empty"))]
    flags = [field(spec, g) for g in ML100K_GENRES]
    bad_flag = F.lit(False)
    for flag in flags:
        bad_flag = bad_flag | ~flag.isin("0", "1")
    # 'unknown' is ml-100k's marker for "no genre", not a genre.
    named = [
        F.when(flag == F.lit("1"), F.lit(g)) for g, flag in zip(ML100K_GENRES, flags, strict=True)
    ][1:]
    genres = F.filter(F.array(*named), lambda g: g.isNotNull())
    return genres, [(bad_flag, Reason.INVALID_VALUE, F.lit("genre flags must be 0 or 1"))]


def parse_movies(lines: DataFrame, spec: FileSpec) -> DataFrame:
    """Movie lines -> item_id, title, year, genres (+ META)."""
    title, year = _title_and_year(spec)
    genres, genre_checks = _genres(spec)
    checks = [
        *_common_checks(spec),
        *_required(spec, ("item_id", "title")),
        *_id_checks(spec, ("item_id",)),
        *genre_checks,
    ]
    values = {
        Col.ITEM_ID: field(spec, "item_id").try_cast("bigint"),
        Col.TITLE: title,
        Col.YEAR: year,
        Col.GENRES: genres,
    }
    return _classified(lines, spec, checks, values)


def parse_tags(lines: DataFrame, spec: FileSpec, ds: date) -> DataFrame:
    """Tag lines -> user_id, item_id, tag, event_ts (+ META)."""
    checks = [
        *_common_checks(spec),
        *_required(spec, spec.fields),
        *_id_checks(spec, ("user_id", "item_id")),
        *_epoch_checks(spec, max_event_epoch(ds)),
    ]
    values = {
        Col.USER_ID: field(spec, "user_id").try_cast("bigint"),
        Col.ITEM_ID: field(spec, "item_id").try_cast("bigint"),
        "tag": field(spec, "tag"),
        Col.EVENT_TS: F.timestamp_seconds(field(spec, "timestamp").try_cast("bigint")),
    }
    return _classified(lines, spec, checks, values)


def parse_users(lines: DataFrame, spec: FileSpec) -> DataFrame:
    """User lines (ml-100k, ml-1m) -> user_id, gender, age, occupation, zip_code (+ META)."""
    age = field(spec, "age").try_cast("int")
    gender = field(spec, "gender")
    occupation = field(spec, "occupation")
    checks = [
        *_common_checks(spec),
        *_required(spec, ("user_id", "age", "gender")),
        *_id_checks(spec, ("user_id",)),
        (
            age.isNull(),
            Reason.UNPARSEABLE_NUMBER,
            F.concat(F.lit("age is not an integer: "), field(spec, "age")),
        ),
        ((age < F.lit(0)) | (age > F.lit(120)), Reason.INVALID_VALUE, F.lit("age outside 0-120")),
        (~gender.isin("M", "F"), Reason.INVALID_VALUE, F.concat(F.lit("gender: "), gender)),
    ]
    if spec.separator == "::":
        # ml-1m codes occupations 0-20.
        code = occupation.try_cast("int")
        mapping = F.create_map(*[F.lit(x) for kv in ML1M_OCCUPATIONS.items() for x in kv])
        occupation = F.try_element_at(mapping, code)
        checks.append(
            (
                occupation.isNull(),
                Reason.INVALID_VALUE,
                F.concat(F.lit("unknown occupation code: "), field(spec, "occupation")),
            )
        )
    values = {
        Col.USER_ID: field(spec, "user_id").try_cast("bigint"),
        Col.GENDER: gender,
        Col.AGE: age,
        Col.OCCUPATION: occupation,
        Col.ZIP_CODE: F.when(field(spec, "zip_code") != F.lit(""), field(spec, "zip_code")),
    }
    return _classified(lines, spec, checks, values)
