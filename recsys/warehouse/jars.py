"""Resolve Delta Lake's JVM jars once, at set-up, into the project's offline cache.

``python -m recsys.warehouse.jars`` starts a throwaway Spark JVM with ``spark.jars.packages`` and
an Ivy home inside the project, copies the resolved jars into the cache that
:func:`recsys.warehouse.session.build_spark` reads, and checks them against
``requirements/jars.lock`` (sha256 per jar). Afterwards no job needs the network.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Final

from recsys.settings import DEFAULT_JAR_CACHE, PROJECT_ROOT
from recsys.warehouse.session import delta_coordinate, delta_jars

IVY_HOME: Final = PROJECT_ROOT / ".cache" / "ivy"
JARS_LOCK: Final = PROJECT_ROOT / "requirements" / "jars.lock"

_RESOLVE_SNIPPET: Final = """
import sys
from pyspark.sql import SparkSession
spark = (SparkSession.builder.master("local[1]")
         .config("spark.jars.packages", sys.argv[1])
         .config("spark.jars.ivy", sys.argv[2])
         .config("spark.ui.enabled", "false")
         .config("spark.driver.host", "127.0.0.1")
         .config("spark.driver.bindAddress", "127.0.0.1")
         .getOrCreate())
spark.stop()
"""


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_lock(lock: Path = JARS_LOCK) -> dict[str, str]:
    """``{jar file name: sha256}`` from the lock file (empty when there is none)."""
    if not lock.is_file():
        return {}
    entries = {}
    for line in lock.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, digest = line.split()
            entries[name] = digest
    return entries


def verify(jar_cache: Path, lock: Path = JARS_LOCK) -> list[str]:
    """Problems with the cache against the lock: missing jars and checksum mismatches."""
    problems = []
    for name, digest in read_lock(lock).items():
        jar = jar_cache / name
        if not jar.is_file():
            problems.append("missing " + name)
        elif sha256(jar) != digest:
            problems.append("sha256 mismatch for " + name)
    return problems


def resolve(jar_cache: Path = DEFAULT_JAR_CACHE, ivy_home: Path = IVY_HOME) -> list[Path]:
    """Fill ``jar_cache`` with Delta's jars unless it is already complete; idempotent.

    Raises:
        RuntimeError: Ivy could not resolve the jars, or they do not match the lock.
    """
    if jar_cache.is_dir() and read_lock() and not verify(jar_cache):
        return delta_jars(jar_cache)
    ivy_home.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, SPARK_LOCAL_IP="127.0.0.1")
    result = subprocess.run(
        [sys.executable, "-c", _RESOLVE_SNIPPET, delta_coordinate(), str(ivy_home)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(
            "resolving " + delta_coordinate() + " through Ivy failed:\n" + result.stderr[-4000:]
        )
    resolved = sorted((ivy_home / "jars").glob("*.jar"))
    if not resolved:
        raise RuntimeError("Ivy reported success but left no jars in " + str(ivy_home / "jars"))
    # Copy into a fresh directory and swap it in, so a half-filled cache is never visible.
    jar_cache.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="spark-jars-", dir=jar_cache.parent))
    for jar in resolved:
        shutil.copy2(jar, staging / jar.name)
    if jar_cache.exists():
        shutil.rmtree(jar_cache)
    staging.rename(jar_cache)
    problems = verify(jar_cache)
    if problems:
        raise RuntimeError(
            "resolved jars do not match requirements/jars.lock: " + "; ".join(problems)
        )
    return delta_jars(jar_cache)


def write_lock(jar_cache: Path = DEFAULT_JAR_CACHE, lock: Path = JARS_LOCK) -> None:
    """Record the cache's jars and checksums (run after a deliberate Delta upgrade)."""
    lines = ["# Delta Lake jars for " + delta_coordinate() + ": file name and sha256"]
    lines += [jar.name + " " + sha256(jar) for jar in sorted(jar_cache.glob("*.jar"))]
    lock.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--jar-cache", type=Path, default=DEFAULT_JAR_CACHE)
    parser.add_argument(
        "--write-lock", action="store_true", help="record checksums after resolving"
    )
    args = parser.parse_args(argv)
    jars = resolve(args.jar_cache)
    if args.write_lock:
        write_lock(args.jar_cache)
    print("Delta jars ready in " + str(args.jar_cache) + ": " + ", ".join(j.name for j in jars))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
