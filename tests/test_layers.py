"""The import graph: imports only point down the layers, and no module circle.

Layers, bottom to top (README "Layers"):

0. ``warehouse``: ``recsys.warehouse``, ``recsys.settings`` and the bucketing contract
   ``ab_testing.bucketing``; they import nothing else of ours.
1. ``recsys`` and ``ab_testing``: peers on the warehouse layer that never import each other.
2. ``reader``: the app-side reader (``recsys.reader``), above both.
3. ``jobs``: Spark jobs; a job imports no other job, only the kit ``jobs.common``.
4. ``dags``: Airflow DAGs; they spark-submit jobs and never import them. Beside them
   ``jobs.offline_eval`` (``make eval``), which runs the jobs' ``main`` in one process as a DAG
   runs them by spark-submit.

Inside ``recsys``, ``recsys.training`` sits below ``recsys.scoring`` (serving imports the model
code, never the other way); the pure kernels both rank with, ``recsys.kernels``, sit below both.
Every import statement counts, also function-level and ``TYPE_CHECKING`` ones: a type-only arrow
is still an arrow.

``KNOWN_DEBT`` lists the arrows and circles that are still there, each a moved-module job of
issue 19; the test fails on any arrow or circle not listed, and on a listed one that is gone
(so the list only shrinks).
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Final

from recsys.settings import PROJECT_ROOT

PACKAGES: Final = ("recsys", "ab_testing", "jobs", "dags")

#: (importer, imported) module pairs that break a rule today, and module circles (as sorted
#: tuples). Remove an entry when its arrow is gone.
KNOWN_DEBT: Final[frozenset[tuple[str, ...]]] = frozenset()


def modules() -> dict[str, Path]:
    """Every module of our packages, by dotted name (packages by their ``__init__``)."""
    out: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((PROJECT_ROOT / package).rglob("*.py")):
            parts = path.relative_to(PROJECT_ROOT).with_suffix("").parts
            name = ".".join(parts).removesuffix(".__init__")
            out[name] = path
    return out


def imports(path: Path, known: set[str]) -> set[str]:
    """Modules of ours that ``path`` imports anywhere (``from a import b`` counts ``a.b`` when
    ``a.b`` is a module, else ``a``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [
                f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in known else node.module
                for a in node.names
            ]
        for name in names:
            # the deepest module of ours that the dotted name falls in
            parts = name.split(".")
            for i in range(len(parts), 0, -1):
                if ".".join(parts[:i]) in known:
                    found.add(".".join(parts[:i]))
                    break
    return found


def layer(module: str) -> tuple[int, str]:
    """(rank, group) of a module; modules of one rank and different groups are peers."""
    top = module.split(".")[0]
    if (
        module.startswith("recsys.warehouse")
        or module == "recsys.settings"
        or module == "ab_testing.bucketing"
    ):
        return 0, "warehouse"
    if module == "jobs.offline_eval":
        return 4, "pipeline"
    if module.startswith("recsys.reader"):
        return 2, "reader"
    if top in ("recsys", "ab_testing"):
        return 1, top
    return {"jobs": (3, "jobs"), "dags": (4, "dags")}[top]


def violation(src: str, dst: str) -> str | None:
    """Why ``src`` importing ``dst`` breaks the layering, or None."""
    if src == dst or dst in ("recsys", "ab_testing", "jobs", "dags"):
        return None
    (rank_s, group_s), (rank_d, group_d) = layer(src), layer(dst)
    if rank_d > rank_s:
        return f"upward: {group_s} imports {group_d}"
    if rank_d == rank_s and group_d != group_s:
        return f"peers: {group_s} imports {group_d}"
    if group_s == group_d == "jobs" and dst != "jobs.common":
        return "a job imports another job"
    if group_s == "dags" and group_d == "jobs":
        return "a DAG imports a job"
    if src.startswith("recsys.training") and dst.startswith("recsys.scoring"):
        return "upward: recsys.training imports recsys.scoring"
    return None


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {name: imports(path, known) - {name} for name, path in mods.items()}


def circles(edges: dict[str, set[str]]) -> list[tuple[str, ...]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[tuple[str, ...]] = []
    counter = 0
    for root in sorted(edges):
        if root in index:
            continue
        work: list[tuple[str, list[str]]] = [(root, sorted(edges[root]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, todo = work[-1]
            if todo:
                nxt = todo.pop()
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, sorted(edges.get(nxt, ()))))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    comp.append(member)
                    if member == node:
                        break
                if len(comp) > 1:
                    out.append(tuple(sorted(comp)))
    return out


def test_every_import_points_down() -> None:
    edges = graph()
    found = {
        (src, dst): why
        for src, dsts in edges.items()
        for dst in dsts
        if (why := violation(src, dst)) is not None
    }
    new = {k: v for k, v in found.items() if k not in KNOWN_DEBT}
    assert not new, "imports against the layers (README 'Layers'):\n" + "\n".join(
        f"  {s} -> {d}: {why}" for (s, d), why in sorted(new.items())
    )


def test_no_import_circle() -> None:
    found = circles(graph())
    # a two-module circle is listed in KNOWN_DEBT as its one arrow that breaks it
    new = [c for c in found if not any(set(d) <= set(c) for d in KNOWN_DEBT)]
    assert not new, f"import circles: {new}"


def test_known_debt_is_still_there() -> None:
    """An entry whose arrow is gone must leave the list, so the list only shrinks."""
    edges = graph()
    stale = sorted(d for d in KNOWN_DEBT if d[1] not in edges.get(d[0], set()))
    assert not stale, f"remove from KNOWN_DEBT, fixed: {stale}"


def test_rules_catch_each_kind_of_arrow() -> None:
    # the checker itself: each rule fires on a made-up arrow, and a legal arrow passes
    assert violation("recsys.warehouse.io", "recsys.training.data") is not None
    assert violation("recsys.kernels", "ab_testing.assignment") is not None
    assert violation("ab_testing.outcomes", "recsys.training.data") is not None
    assert violation("recsys.training.data", "recsys.reader.reader") is not None
    assert violation("jobs.evaluate", "jobs.train") is not None
    assert violation("recsys.training.blocks", "recsys.scoring.retrieval") is not None
    assert violation("dags.recsys_daily", "jobs.score") is not None
    assert violation("ab_testing.outcomes", "recsys.warehouse.io") is None
    assert violation("recsys.reader.reader", "ab_testing.assignment") is None
    assert violation("jobs.score", "jobs.common") is None
    assert violation("jobs.offline_eval", "jobs.train") is None
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [("a", "b", "c")]
    assert circles({"a": {"b"}, "b": set()}) == []
