"""Print what the reader serves, without Spark: ``python -m recsys.reader --user 1 --item 1``.

Usage::

    python -m recsys.reader [--warehouse DIR] [--experiments YAML] [--user ID ...]
        [--item ID ...] [--genre NAME ...] [-n 5] [--record]

Each item is printed with its title from ``bronze.items`` (only the shown ids are read). Served
events go to an in-memory sink unless ``--record`` appends them to ``ab.served`` (source ``app``,
one commit at exit). Exits 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ab_testing.config import load_config
from recsys.reader.reader import Reader
from recsys.reader.results import ServedList
from recsys.reader.sinks import DeltaServedSink, InMemorySink
from recsys.reader.titles import item_titles


def _show(label: str, result: ServedList, titles: dict[int, str]) -> None:
    state = "fallback: trending" if result.is_fallback else f"ds {result.ds}"
    rec_set = f", rec_set {result.rec_set}" if result.rec_set else ""
    print(f"{label} ({state}{rec_set}, table version {result.table_version})")
    for item in result.items:
        title = titles.get(item.item_id, "(title unknown)")
        print(
            f"  {item.rank:>3}. item {item.item_id:<8} {title[:48]:<48} score {item.score:8.4f}"
            f"  {item.reason}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="recsys.reader", description=__doc__.split("\n\n")[0])
    parser.add_argument("--warehouse", help="warehouse root (default: RECSYS_WAREHOUSE)")
    parser.add_argument("--experiments", help="experiments YAML (default: none)")
    parser.add_argument("--user", type=int, action="append", default=[], help="user id")
    parser.add_argument("--item", type=int, action="append", default=[], help="item id")
    parser.add_argument("--genre", action="append", default=[], help="genre ('all': overall)")
    parser.add_argument("-n", type=int, default=5, help="items per list, >= 1")
    parser.add_argument("--record", action="store_true", help="append served events to ab.served")
    args = parser.parse_args(argv)
    if args.n < 1:
        print(f"recsys.reader: error: n: must be >= 1, got {args.n}", file=sys.stderr)
        return 2
    try:
        experiments = None if args.experiments is None else load_config(args.experiments)
    except (OSError, ValueError, TypeError) as err:
        print(f"recsys.reader: error: experiments: {err}", file=sys.stderr)
        return 2
    if args.warehouse is None:
        from recsys.settings import load_settings

        root = load_settings().warehouse_root
    else:
        root = args.warehouse
    sink: DeltaServedSink | InMemorySink = DeltaServedSink(root) if args.record else InMemorySink()
    # Leaving the block closes the reader, then the sink: its last batch is written.
    shown: list[tuple[str, ServedList]] = []
    with sink, Reader(root, experiments=experiments, sink=sink) as reader:
        for user in args.user:
            result = reader.recommendations_for(user, n=args.n)
            shown.append((f"recommendations_for({user})", result))
        for item in args.item:
            shown.append((f"related_to({item})", reader.related_to(item, n=args.n)))
        for genre in args.genre or ([] if args.user or args.item else ["all"]):
            shown.append((f"trending({genre!r})", reader.trending(genre, n=args.n)))
    titles = item_titles(root, {i.item_id for _, result in shown for i in result.items})
    for label, result in shown:
        _show(label, result, titles)
    return 0


if __name__ == "__main__":
    sys.exit(main())
