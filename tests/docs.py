"""The user documentation: README.md and docs/*.md, and their tested sections."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))


def section(name: str) -> str:
    """The text between ``<!-- section:NAME -->`` and its end marker, wherever it is."""
    for path in DOCS:
        m = re.search(
            rf"<!-- section:{name} -->(.*?)<!-- /section:{name} -->",
            path.read_text(),
            re.S,
        )
        if m:
            return m.group(1)
    raise AssertionError(f"no section {name} in README.md or docs/")


def blocks(name: str, lang: str = "python") -> list[str]:
    """The ```LANG code blocks of section ``name``, in order."""
    return re.findall(rf"```{lang}\n(.*?)```", section(name), re.S)


def text() -> str:
    """All of the documentation as one text."""
    return "\n".join(p.read_text() for p in DOCS)
