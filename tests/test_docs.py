"""The README stays short and every relative link in README.md and docs/ resolves (issue 19).

Links are Markdown ``[text](target)`` outside code; a target with a URL scheme is not checked, a
relative one must name an existing file or folder (relative to the linking file), and its
``#anchor``, if any, must match a heading of the target Markdown file (GitHub's slugs).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
#: The README is for users; details live in docs/. Bytes, as ``wc -c README.md`` counts them.
README_MAX_BYTES = 10_000

_FENCE = re.compile(r"^```.*?^```[^\n]*$", re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"(?<!!)\[[^\]\n]*\]\(([^()\s]+)\)")
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


def _doc_files() -> list[Path]:
    return [README, *sorted((ROOT / "docs").rglob("*.md"))]


def _prose(text: str) -> str:
    """``text`` without fenced code blocks and inline code spans (their brackets are not links)."""
    return _CODE_SPAN.sub("", _FENCE.sub("", text))


def links(text: str) -> list[str]:
    """Targets of the Markdown links in ``text``, outside code, in order."""
    return _LINK.findall(_prose(text))


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    plain = heading.replace("`", "").strip().lower()
    return re.sub(r"[^\w\- ]", "", plain).replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    """Anchors of every heading of a Markdown text (outside code blocks)."""
    return {slug(h) for h in _HEADING.findall(_FENCE.sub("", markdown))}


def _relative(path: Path, root: Path = ROOT) -> str:
    return path.relative_to(root).as_posix()


def broken_links(doc: Path, root: Path = ROOT) -> list[str]:
    """The relative links of ``doc`` that name no existing file or heading, as readable lines.

    Args:
        doc: A Markdown file under ``root``.
        root: The repository root; paths in messages are relative to it.
    """
    root, doc = root.resolve(), doc.resolve()
    problems = []
    for target in links(doc.read_text(encoding="utf-8")):
        if _SCHEME.match(target):
            continue
        path_part, _, anchor = target.partition("#")
        resolved = (doc.parent / path_part).resolve() if path_part else doc
        if not resolved.exists():
            rel = _relative(resolved, root) if resolved.is_relative_to(root) else str(resolved)
            problems.append(f"{_relative(doc, root)}: {target} -> {rel} does not exist")
            continue
        if (
            anchor
            and resolved.suffix == ".md"
            and anchor not in anchors(resolved.read_text(encoding="utf-8"))
        ):
            problems.append(f"{_relative(doc, root)}: {target} -> no heading #{anchor}")
    return problems


def test_readme_is_short() -> None:
    size = len(README.read_bytes())
    assert size <= README_MAX_BYTES, (
        f"README.md is {size} bytes, over {README_MAX_BYTES}: move details to docs/"
    )


def test_docs_folder_has_an_index_linked_from_the_readme() -> None:
    assert (ROOT / "docs" / "README.md").is_file()
    assert "docs/README.md" in links(README.read_text(encoding="utf-8"))


@pytest.mark.parametrize("doc", _doc_files(), ids=_relative)
def test_relative_links_resolve(doc: Path) -> None:
    assert broken_links(doc) == []


def test_link_checker_finds_what_it_must(tmp_path: Path) -> None:
    """The checker itself: code is not a link, a missing file and a wrong anchor are reported."""
    (tmp_path / "b.md").write_text("# Title\n\n## A `code` heading\n", encoding="utf-8")
    doc = tmp_path / "a.md"
    doc.write_text(
        "[ok](b.md) [ok](b.md#a-code-heading) [web](https://example.org/x.md) [self](#top)\n"
        "`[not](a-link.md)`\n```\n[not](either.md)\n```\n"
        "[gone](missing.md) [bad](b.md#nope)\n\n# Top\n",
        encoding="utf-8",
    )
    assert links(doc.read_text(encoding="utf-8")) == [
        "b.md",
        "b.md#a-code-heading",
        "https://example.org/x.md",
        "#top",
        "missing.md",
        "b.md#nope",
    ]
    assert broken_links(doc, root=tmp_path) == [
        "a.md: missing.md -> missing.md does not exist",
        "a.md: b.md#nope -> no heading #nope",
    ]
