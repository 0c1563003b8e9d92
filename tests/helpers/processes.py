"""Project code in real Python processes, each in a process group of its own (with its JVM)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence

from recsys.settings import PROJECT_ROOT

#: What a job process gets on top of this environment: a small driver on one local core.
JOB_ENV = {"RECSYS_DRIVER_MEMORY": "1g", "RECSYS_SPARK_MASTER": "local[1]"}


def run_processes(argvs: Sequence[Sequence[str]], timeout_s: float) -> list[tuple[int, str]]:
    """Start ``python <argv>`` for every argv at once (from the checkout, with :data:`JOB_ENV`,
    stderr merged into stdout) and wait for all of them, ``timeout_s`` seconds in all; returns
    each one's (return code, output). Every process group is SIGKILLed before returning, so
    nothing of it outlives the call (its JVM included); running past the timeout raises
    ``subprocess.TimeoutExpired``."""
    env = dict(os.environ, **JOB_ENV)
    procs = [
        subprocess.Popen(
            [sys.executable, *argv],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        for argv in argvs
    ]
    outputs = []
    try:
        deadline = time.monotonic() + timeout_s
        for p in procs:
            outputs.append(p.communicate(timeout=max(1.0, deadline - time.monotonic()))[0])
    finally:
        for p in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
    return [(p.returncode, out) for p, out in zip(procs, outputs, strict=True)]


def run_jobs_together(argvs: Sequence[Sequence[str]], timeout_s: float) -> list[str]:
    """:func:`run_processes` of ``python -m <argv>`` for every argv (``jobs.<job> ...``): every
    process must exit 0 (the output's tail, without Java stack lines, says why not); returns
    their outputs."""
    results = run_processes([["-m", *argv] for argv in argvs], timeout_s)
    for code, out in results:
        assert code == 0, "\n".join(
            line for line in out.splitlines() if not line.lstrip().startswith("at ")
        )[-3000:]
    return [out for _, out in results]
