"""The README and docs/ link only to pages and files inside this repository.

`make docs` (MkDocs, strict) checks the links between docs/ pages and their anchors; this
checks README.md too, and that nothing names a file outside the repository. A newcomer who
follows a link must find its target in their own clone.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]

FENCED_CODE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)
INLINE_CODE = re.compile(r"`[^`\n]*`")
INLINE_LINK = re.compile(r"!?\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^\s{0,3}\[[^\]\n]+\]:\s*<?(\S+?)>?(?:\s|$)", re.M)
# Files the repository does not have, which earlier versions of these pages cited.
OUTSIDE = re.compile(r"\.\./" + "shared|shared/reference|DESIGN\\.md|integration-guide\\.md")


def link_targets(text: str) -> list[str]:
    """Every link target in a Markdown text, code blocks and code spans left out."""
    prose = INLINE_CODE.sub("", FENCED_CODE.sub("", text))
    return INLINE_LINK.findall(prose) + REFERENCE_LINK.findall(prose)


def broken_links(page: Path, text: str) -> list[str]:
    """The links of `page` that leave the repository or name a file it does not have."""
    problems = []
    if match := OUTSIDE.search(text):
        problems.append(f"names a file outside the repository: {match.group(0)!r}")
    for target in link_targets(text):
        if re.match(r"[a-z][a-z0-9+.-]*:", target, re.I) or target.startswith("#"):
            continue  # a web address, mailto:, or an anchor on the same page
        path = target.split("#", 1)[0].split("?", 1)[0]
        if path.startswith("/"):
            problems.append(f"{target}: an absolute path (it breaks outside one web server)")
            continue
        resolved = (page.parent / path).resolve()
        if not resolved.is_relative_to(ROOT):
            problems.append(f"{target}: outside the repository")
        elif not resolved.exists():
            problems.append(f"{target}: no such file")
    return problems


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_link_of_the_readme_and_docs_leads_to_a_file_in_the_repository(page):
    assert broken_links(page, page.read_text()) == []


def test_the_readme_links_into_the_docs():
    readme = link_targets((ROOT / "README.md").read_text())
    assert any(target.startswith("docs/") for target in readme)


# The steering folder beside a developer's checkout (spelled in two parts, so that this file
# itself names no path outside the repository).
SIBLING = ".." + "/shared"


def test_a_link_outside_the_repository_or_to_a_missing_file_is_caught():
    page = ROOT / "docs" / "index.md"
    text = (
        f"See [the guide]({SIBLING}/reference/guide.md), [gone](missing.md), [root](/etc/passwd),\n"
        "[up](../../outside.md), [ok](operations.md#metrics), [web](https://example.com) and\n"
        "[ref]: ../README.md\n\n```\n[not a link](nowhere.md)\n```\n"
    )
    problems = broken_links(page, text)
    assert problems == [
        f"names a file outside the repository: '{SIBLING}'",
        f"{SIBLING}/reference/guide.md: no such file",
        "missing.md: no such file",
        "/etc/passwd: an absolute path (it breaks outside one web server)",
        "../../outside.md: outside the repository",
    ]
