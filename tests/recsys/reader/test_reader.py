"""The app-side reader on tables written with delta-rs (no Spark): lookups, fallbacks, refresh,
variants, served events and argument checks."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import pytest

from ab_testing.assignment import assign
from ab_testing.config import parse_config
from recsys.reader import InMemorySink, Reader, ServedEvent, rec_set_of
from recsys.settings import PROJECT_ROOT
from recsys.warehouse.tables import (
    SERVE_RECOMMENDATIONS,
    SERVE_RELATED_ITEMS,
    SERVE_TRENDING,
    TRENDING_ALL_GENRES,
    RecSet,
)
from tests.helpers.experiments import experiment, layer

D1 = date(2031, 3, 1)
D2 = date(2031, 3, 2)
NOW = datetime(2031, 3, 2, 9, 30, tzinfo=UTC)


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def make_reader(root: str, sink: InMemorySink, **kwargs: Any) -> Reader:
    return Reader(root, sink=sink, now=lambda: NOW, **kwargs)


@pytest.fixture
def published(rs_warehouse: Any, rows: dict[str, Callable[..., Any]], default_trending: Any) -> Any:
    rs_warehouse.publish(SERVE_RECOMMENDATIONS, rows["recommendations"](D1, [1, 2], tag="old "), D1)
    rs_warehouse.publish(SERVE_RECOMMENDATIONS, rows["recommendations"](D2, [1, 2, 3]), D2)
    rs_warehouse.publish(SERVE_RELATED_ITEMS, rows["related"](D2, [10, 11]), D2)
    rs_warehouse.publish(SERVE_TRENDING, rows["trending"](D2, default_trending), D2)
    return rs_warehouse


def test_known_user_gets_the_newest_day(published: Any) -> None:
    sink = InMemorySink()
    reader = make_reader(published.root, sink)
    result = reader.recommendations_for(2, n=3)
    assert result.item_ids == [201, 202, 203]
    assert [i.rank for i in result.items] == [1, 2, 3]
    assert result.items[0].reason == "because model 1"
    assert result.items[1].score == pytest.approx(0.5)
    assert (result.ds, result.rec_set, result.model_version) == (D2, RecSet.MODEL, "mv-model")
    assert not result.is_fallback
    assert result.surface == "home"
    assert sink.events == (
        ServedEvent("2", "home", NOW, RecSet.MODEL, (201, 202, 203), "mv-model"),
    )
    assert len(reader.recommendations_for(3, n=50).items) == 5


def test_unknown_ids_get_trending_never_an_exception(published: Any) -> None:
    sink = InMemorySink()
    reader = make_reader(published.root, sink)
    recs = reader.recommendations_for(999_999, n=2)
    assert recs.is_fallback
    assert recs.item_ids == [7, 8]
    assert recs.items[0].reason == "Trending now"
    assert (recs.rec_set, recs.model_version, recs.surface) == (RecSet.MODEL, None, "home")
    assert sink.events[-1].item_ids == (7, 8)
    assert sink.events[-1].model_version is None
    related = reader.related_to(-5)
    assert related.is_fallback
    assert related.item_ids == [7, 8, 9]
    assert related.surface == "item_page"
    genre = reader.trending("No Such Genre")
    assert genre.is_fallback
    assert genre.item_ids == [7, 8, 9]


def test_related_and_trending(published: Any) -> None:
    reader = make_reader(published.root, InMemorySink())
    related = reader.related_to(11, n=2)
    assert related.item_ids == [12, 13]
    assert related.items[0].reason == "Also Comedy 1"
    assert (related.model_version, related.is_fallback) == ("mv-tt", False)
    overall = reader.trending()
    assert overall.item_ids == [7, 8, 9]
    assert overall.items[0].score == pytest.approx(9.0)
    comedy = reader.trending("comedy", n=5)  # case-insensitive
    assert comedy.item_ids == [8, 5]
    assert comedy.items[0].reason == "Trending in Comedy"
    assert not comedy.is_fallback


def test_empty_warehouse_serves_empty_fallbacks(rs_warehouse: Any) -> None:
    sink = InMemorySink()
    reader = make_reader(rs_warehouse.root, sink)
    recs = reader.recommendations_for(1)
    assert (recs.items, recs.is_fallback, recs.ds) == ((), True, None)
    assert reader.related_to(1).items == ()
    assert reader.trending("Drama").items == ()
    assert len(sink.events) == 1


def test_reuses_the_snapshot_until_a_newer_version_and_the_interval(
    rs_warehouse: Any, rows: dict[str, Callable[..., Any]]
) -> None:
    clock = FakeClock()
    rs_warehouse.publish(SERVE_RECOMMENDATIONS, rows["recommendations"](D1, [1], tag="old "), D1)
    reader = make_reader(rs_warehouse.root, InMemorySink(), refresh_interval_s=60, clock=clock)
    first = reader.recommendations_for(1)
    assert (first.ds, first.items[0].reason) == (D1, "old because model 1")
    rs_warehouse.publish(SERVE_RECOMMENDATIONS, rows["recommendations"](D2, [1]), D2)
    clock.t = 59.0
    assert reader.recommendations_for(1).ds == D1  # not checked yet: the old day, whole
    clock.t = 60.0
    second = reader.recommendations_for(1)
    assert (second.ds, second.items[0].reason) == (D2, "because model 1")
    assert second.table_version == first.table_version + 1  # type: ignore[operator]
    # A rerun of the same day is a new version too; refresh() looks at once.
    rs_warehouse.publish(SERVE_RECOMMENDATIONS, rows["recommendations"](D2, [1], tag="rerun "), D2)
    reader.refresh()
    assert reader.recommendations_for(1).items[0].reason == "rerun because model 1"


CONFIG = {
    "version": 1,
    "holdout": {"salt": "holdout-reader", "buckets": 1000},
    "layers": [
        layer(
            "ranking",
            experiment(
                "pop_vs_model",
                "2031-01-01",
                "2031-06-01",
                [0, 10000],
                {"model": 1, "popularity": 1},
            ),
        )
    ],
}


def test_variant_chooses_the_recommendation_set(published: Any) -> None:
    config = parse_config(CONFIG)
    sink = InMemorySink()
    reader = make_reader(published.root, sink, experiments=config)
    seen = set()
    for user in (1, 2, 3):
        expected = [a.variant for a in assign(config, str(user), on=NOW.date())]
        want = expected[0] if expected else RecSet.MODEL
        result = reader.recommendations_for(user, n=2)
        assert result.rec_set == want == reader.rec_set_for(user)
        first = 1001 if want == RecSet.POPULARITY else 100 * user + 1
        assert result.item_ids[0] == first
        seen.add(want)
    assert [e.rec_set for e in sink.events] == [reader.rec_set_for(u) for u in (1, 2, 3)]
    # Over many users both arms and the holdout appear, and no variant is outside RecSet.
    arms = {rec_set_of(config, str(u), None, NOW.date()) for u in range(200)}
    assert arms == {RecSet.MODEL, RecSet.POPULARITY}
    assert rec_set_of(None, "1", None, NOW.date()) == RecSet.MODEL
    # Before the experiment starts everyone gets the model set.
    assert reader.rec_set_for(1, on=date(2030, 1, 1)) == RecSet.MODEL


def test_a_failing_sink_does_not_break_serving(published: Any) -> None:
    class Broken(InMemorySink):
        def record(self, event: ServedEvent) -> None:
            raise OSError("disk full")

    reader = Reader(published.root, sink=Broken())
    assert reader.recommendations_for(1, n=1).item_ids == [101]


@pytest.mark.parametrize(
    ("call", "error", "name"),
    [
        (lambda r: r.recommendations_for("42"), TypeError, "user_id"),
        (lambda r: r.recommendations_for(True), TypeError, "user_id"),
        (lambda r: r.recommendations_for(1, n=0), ValueError, "n"),
        (lambda r: r.related_to(1.5), TypeError, "item_id"),
        (lambda r: r.trending(3), TypeError, "genre"),
        (lambda r: r.trending(n=2.0), TypeError, "n"),
    ],
)
def test_caller_mistakes_raise(
    rs_warehouse: Any, call: Callable[[Reader], object], error: type, name: str
) -> None:
    reader = make_reader(rs_warehouse.root, InMemorySink())
    with pytest.raises(error, match=name):
        call(reader)


def test_constructor_checks(rs_warehouse: Any) -> None:
    with pytest.raises(ValueError, match="refresh_interval_s"):
        Reader(rs_warehouse.root, sink=InMemorySink(), refresh_interval_s=-1)
    with pytest.raises(TypeError, match="experiments"):
        Reader(rs_warehouse.root, sink=InMemorySink(), experiments=CONFIG)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="warehouse_root"):
        Reader("", sink=InMemorySink())
    with pytest.raises(TypeError, match="warehouse_root"):
        Reader(None, sink=InMemorySink())  # type: ignore[arg-type]


def test_trending_genre_all_is_the_overall_list(published: Any) -> None:
    reader = make_reader(published.root, InMemorySink())
    assert reader.trending(TRENDING_ALL_GENRES).item_ids == reader.trending().item_ids


def test_cli_answers_for_users_items_and_genres(
    published: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from recsys.reader.__main__ import main

    argv = ["--warehouse", published.root, "--user", "1", "--user", "99999", "--item", "10"]
    assert main([*argv, "--genre", "Comedy", "-n", "2"]) == 0
    out = capsys.readouterr().out
    assert "recommendations_for(1) (ds 2031-03-02, rec_set model" in out
    assert "recommendations_for(99999) (fallback: trending" in out
    assert "Also Comedy 1" in out
    assert "Trending in Comedy" in out
    assert main([*argv, "-n", "0"]) == 2


def test_from_settings_reads_the_environment(
    published: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECSYS_WAREHOUSE", published.root)
    reader = Reader.from_settings(
        PROJECT_ROOT / "ab_testing" / "experiments.example.yaml",
        sink=InMemorySink(),
        now=lambda: NOW,
    )
    assert reader.experiments is not None
    assert reader.trending().item_ids == [7, 8, 9]
