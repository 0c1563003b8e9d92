"""Polling in a background thread while the test body changes what is polled."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from recsys.reader import Reader, ServedList

T = TypeVar("T")


@contextmanager
def polling_in_background(
    poll: Callable[[], Iterable[T]], *, pause_s: float = 0.01, join_s: float = 60.0
) -> Iterator[list[T]]:
    """Call ``poll`` over and over in a daemon thread while the ``with`` body runs.

    Yields the list every observation of ``poll`` is appended to, as it comes. On exit the thread
    is stopped and joined (``join_s`` seconds at most); then the first error ``poll`` raised is
    raised again, and a thread that did not stop fails the test. ``pause_s`` (seconds) is slept
    before each round, to leave the test process's Spark driver some of the GIL.
    """
    observed: list[T] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def loop() -> None:
        try:
            while not stop.is_set():
                time.sleep(pause_s)
                for item in poll():
                    observed.append(item)
        except BaseException as err:  # any error fails the test, on exit
            errors.append(err)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield observed
    finally:
        stop.set()
        thread.join(join_s)
    if errors:
        raise errors[0]
    if thread.is_alive():
        raise AssertionError(f"the polling thread did not stop within {join_s} s")


@contextmanager
def reader_in_background(
    reader: Reader, users: Sequence[int], n: int = 3
) -> Iterator[list[tuple[int, ServedList]]]:
    """Ask ``reader`` for the top ``n`` recommendations of every user of ``users``, round after
    round, in a background thread while the ``with`` body runs (see
    :func:`polling_in_background`); yields the ``(user, list)`` pairs observed so far."""

    def poll() -> Iterator[tuple[int, ServedList]]:
        for user in users:
            yield user, reader.recommendations_for(user, n=n)

    with polling_in_background(poll) as observed:
        yield observed


def reason_heads(served: ServedList) -> set[str]:
    """The reasons of ``served``'s items, each without its last word (the tests that use it
    write a reason as a label of the published day followed by one more word)."""
    return {item.reason.rsplit(" ", 1)[0] for item in served.items}
