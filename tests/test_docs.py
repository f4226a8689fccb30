"""The README and docs/: every link leads somewhere, and the README stays short enough to read to the end."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .conftest import ROOT

DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)
_CODE = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^()\s<>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)


def prose(markdown: str) -> str:
    """The text outside code blocks and code spans, where a link is a link."""
    return _CODE.sub("", _FENCE.sub("", markdown))


def anchors(markdown: str) -> set[str]:
    """The #anchors GitHub makes of a document's headings: lower case, punctuation dropped, spaces to
    hyphens, and -1, -2 ... after a repeated one."""
    made: set[str] = set()
    for heading in _HEADING.findall(_FENCE.sub("", markdown)):
        text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading: its text
        slug = re.sub(r"[^\w\- ]", "", text.replace("`", "").lower()).replace(" ", "-")
        anchor, n = slug, 0
        while anchor in made:
            n += 1
            anchor = f"{slug}-{n}"
        made.add(anchor)
    return made


def test_the_anchor_rule_matches_github() -> None:
    text = '# storybot\n## `ask --json`\n## Stories: deep links, /story and "which story do you mean?"\n## Stories\n## Stories\n'
    assert anchors(text) == {
        "storybot",
        "ask---json",
        "stories-deep-links-story-and-which-story-do-you-mean",
        "stories",
        "stories-1",
    }
    assert anchors("```\n# not a heading\n```\n") == set()


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_link_leads_somewhere(document: Path) -> None:
    broken = []
    for target in _LINK.findall(prose(document.read_text(encoding="utf-8"))):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...: not ours to check offline
            continue
        path, _, anchor = target.partition("#")
        linked = (document.parent / path).resolve() if path else document
        if not linked.exists():
            broken.append(f"{target}: no file {linked}")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked.read_text(encoding="utf-8")):
            broken.append(f"{target}: no heading for #{anchor} in {linked.name}")
    assert broken == []


def test_the_readme_is_short_and_keeps_the_two_commands_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 200
    assert "```sh\nscripts/start\n```" in readme and "```sh\nscripts/test\n```" in readme
    assert "scripts/test" in (ROOT / ".ci" / "run").read_text()  # CI runs what the README says
    linked = {target.partition("#")[0] for target in _LINK.findall(prose(readme))}
    assert {f"docs/{path.name}" for path in DOCUMENTS[1:]} <= linked  # every document is one click away
