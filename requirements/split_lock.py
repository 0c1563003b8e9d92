"""Split a `pip freeze --all` of the working .venv into torch.lock and platform.lock.

torch.lock holds torch and everything it needs (installed first, with pip's resolver);
platform.lock holds the rest (installed after, with --no-deps). Usage (via `make lock`):
    python requirements/split_lock.py FREEZE_FILE
"""

from __future__ import annotations

import re
import sys
from importlib.metadata import distribution
from pathlib import Path

from packaging.requirements import Requirement

HERE = Path(__file__).resolve().parent


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(root: str) -> set[str]:
    """Names of ``root`` and everything it needs on this platform, extras included."""
    seen: set[tuple[str, str]] = set()
    todo: list[tuple[str, str]] = [(root, "")]
    while todo:
        name, extra = todo.pop()
        if (canonical(name), extra) in seen:
            continue
        seen.add((canonical(name), extra))
        for raw in distribution(name).requires or []:
            req = Requirement(raw)
            if req.marker is not None and not req.marker.evaluate({"extra": extra}):
                continue
            todo.append((req.name, ""))
            todo.extend((req.name, e) for e in req.extras)
    return {name for name, _ in seen}


def main(freeze_file: str) -> int:
    pins = [line.strip() for line in Path(freeze_file).read_text().splitlines() if "==" in line]
    torch_deps = closure("torch")
    torch_lines = [p for p in pins if canonical(p.split("==")[0]) in torch_deps]
    rest = [p for p in pins if p not in torch_lines]
    (HERE / "torch.lock").write_text(
        "# torch and its dependencies, installed first (make setup). Regenerate with: make lock\n"
        + "\n".join(torch_lines)
        + "\n"
    )
    (HERE / "platform.lock").write_text(
        "# Everything else, exact, installed with --no-deps after torch.lock (make setup)."
        " Regenerate: make lock\n" + "\n".join(rest) + "\n"
    )
    print(f"torch.lock: {len(torch_lines)} pins, platform.lock: {len(rest)} pins")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
