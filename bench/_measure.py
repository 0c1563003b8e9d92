"""Measurement helpers of the scoring benchmarks (Linux ``/proc``; None elsewhere).

One :class:`Meter` per benchmark process samples the process tree rooted at this Python driver
(the driver JVM that pyspark launched, and below it ``pyspark.daemon`` and its forked Python
workers) every ``interval`` seconds. :meth:`Meter.arm` wraps one timed arm and returns its wall
seconds, CPU seconds of the whole tree and per group (Python driver, JVM, Python workers, other
children such as shells the JVM forks), peak resident memory of the first three while the arm
ran, and the 1-minute load average before and after.

CPU seconds are per process (``utime + stime``), taken at the start of an arm, at every sample
and at the end: a process's share is its last value seen minus its value at the start (0 for a
process born during the arm), so a Python worker that exits during the arm loses at most one
sampling interval of CPU. (Parents' ``cutime`` is not used: Spark's daemon does not always account
its reaped workers there.)
Worker RSS is summed over processes, so pages a forked worker shares with ``pyspark.daemon`` are
counted in each of them (an upper bound); the largest single worker is reported too.
"""

from __future__ import annotations

import os
import resource
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_CLK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_MIB = 2**20
DRIVER, JVM, WORKERS, OTHER = "driver_py", "jvm", "py_workers", "other"


@dataclass(frozen=True, slots=True)
class Proc:
    """One process from ``/proc/<pid>/stat``."""

    pid: int
    ppid: int
    comm: str
    cpu_s: float  # own user + system
    rss_bytes: int


def _read_proc(pid: int) -> Proc | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # comm may hold spaces and parentheses: it ends at the last ')'.
    head, _, rest = raw.rpartition(")")
    comm = head.partition("(")[2]
    f = rest.split()
    # fields after comm: state(0) ppid(1) ... utime(11) stime(12) ... rss(21)
    ticks = int(f[11]) + int(f[12])
    return Proc(pid, int(f[1]), comm, ticks / _CLK, int(f[21]) * _PAGE)


def process_tree(root: int) -> list[Proc]:
    """``root`` and all its live descendants."""
    procs: dict[int, Proc] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            p = _read_proc(int(entry))
            if p is not None:
                procs[p.pid] = p
    kids: dict[int, list[int]] = {}
    for p in procs.values():
        kids.setdefault(p.ppid, []).append(p.pid)
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid in procs:
            out.append(procs[pid])
            todo.extend(kids.get(pid, ()))
    return out


def _groups(tree: list[Proc], root: int) -> dict[str, list[Proc]]:
    """Split the tree into the Python driver, the JVM(s) and the Python workers under them."""
    groups: dict[str, list[Proc]] = {DRIVER: [], JVM: [], WORKERS: [], OTHER: []}
    for p in tree:
        if p.pid == root:
            groups[DRIVER].append(p)
        elif p.comm == "java":
            groups[JVM].append(p)
        elif p.comm.startswith("python") or p.comm.startswith("pyspark"):
            groups[WORKERS].append(p)
        else:  # e.g. the shells Hadoop's local file system forks from the JVM: CPU only (a child
            # caught between fork and exec reports its parent's RSS)
            groups[OTHER].append(p)
    return groups


def _cpu(tree: list[Proc], root: int) -> dict[int, tuple[str, float]]:
    """pid -> (group, own CPU seconds)."""
    return {p.pid: (g, p.cpu_s) for g, ps in _groups(tree, root).items() for p in ps}


class Meter:
    """Samples the process tree of this process in a daemon thread; see the module docstring."""

    def __init__(self, interval: float = 0.2) -> None:
        self.root = os.getpid()
        self.interval = interval
        self._lock = threading.Lock()
        self._peaks: dict[str, float] = {}
        self._cpu_last: dict[int, tuple[str, float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="bench-meter", daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        tree = process_tree(self.root)
        groups = _groups(tree, self.root)
        with self._lock:
            self._cpu_last.update(_cpu(tree, self.root))
        now = {
            DRIVER: sum(p.rss_bytes for p in groups[DRIVER]),
            JVM: sum(p.rss_bytes for p in groups[JVM]),
            WORKERS: sum(p.rss_bytes for p in groups[WORKERS]),
            "one_worker": max((p.rss_bytes for p in groups[WORKERS]), default=0),
            "n_workers": len(groups[WORKERS]),
        }
        with self._lock:
            for key, value in now.items():
                self._peaks[key] = max(self._peaks.get(key, 0), value)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self._sample()
            except Exception:  # a vanished process between listdir and read: next sample
                continue

    def close(self) -> None:
        """Stop the sampling thread."""
        self._stop.set()
        self._thread.join(timeout=5)

    @contextmanager
    def arm(self, name: str) -> Iterator[dict[str, Any]]:
        """Time one arm; the yielded dict is filled with its figures when the block exits."""
        figures: dict[str, Any] = {}
        load_before = os.getloadavg()[0]
        cpu0 = _cpu(process_tree(self.root), self.root)
        with self._lock:
            self._peaks = {}
            self._cpu_last = dict(cpu0)
        t0 = time.perf_counter()
        yield figures
        wall = time.perf_counter() - t0
        self._sample()
        with self._lock:
            peaks = dict(self._peaks)
            last = dict(self._cpu_last)
        cpu = {DRIVER: 0.0, JVM: 0.0, WORKERS: 0.0, OTHER: 0.0}
        for pid, (group, seconds) in last.items():
            cpu[group] += seconds - (cpu0[pid][1] if pid in cpu0 else 0.0)
        figures.update(
            {
                "seconds": round(wall, 2),
                "cpu_s": round(sum(cpu.values()), 1),
                "cpu_s_" + DRIVER: round(cpu[DRIVER], 1),
                "cpu_s_" + JVM: round(cpu[JVM], 1),
                "cpu_s_" + WORKERS: round(cpu[WORKERS], 1),
                "cpu_s_" + OTHER: round(cpu[OTHER], 1),
                "peak_rss_mib_" + DRIVER: round(peaks.get(DRIVER, 0) / _MIB),
                "peak_rss_mib_" + JVM: round(peaks.get(JVM, 0) / _MIB),
                "peak_rss_mib_" + WORKERS + "_sum": round(peaks.get(WORKERS, 0) / _MIB),
                "peak_rss_mib_one_worker": round(peaks.get("one_worker", 0) / _MIB),
                "max_py_workers": int(peaks.get("n_workers", 0)),
                "load1_before": round(load_before, 2),
                "load1_after": round(os.getloadavg()[0], 2),
            }
        )


def jvm_peak_rss_mib(jvm_pid: int | None) -> float | None:
    """Lifetime peak RSS (VmHWM) of the driver JVM in MiB."""
    if jvm_pid is None:
        return None
    try:
        for line in Path(f"/proc/{jvm_pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def jvm_pid(spark: Any) -> int | None:
    """Process id of the driver JVM behind ``spark`` (None for a remote or odd JVM)."""
    try:
        return int(spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid())
    except Exception:
        return None


def jvm_heap_mib(spark: Any) -> dict[str, float] | None:
    """Driver JVM heap now: used and max, MiB (java.lang.Runtime)."""
    try:
        rt = spark.sparkContext._jvm.java.lang.Runtime.getRuntime()
        used = (rt.totalMemory() - rt.freeMemory()) / _MIB
        return {"used": round(used), "max": round(rt.maxMemory() / _MIB)}
    except Exception:
        return None


def python_peak_rss_mib() -> float:
    """Lifetime peak RSS of this Python driver process, MiB."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def load_average() -> list[float]:
    """1, 5 and 15-minute load averages."""
    return [round(x, 2) for x in os.getloadavg()]
