"""Notebook 11's promises: every library fact has a source, every link reaches a real section.

Links between notebooks take the form ``NN_name.ipynb#anchor`` (or ``#anchor`` within one
notebook). JupyterLab gives a heading the id of its rendered text with every space replaced by
``-`` (``createHeaderId`` in @jupyterlab/rendermime), so ``## 3. Anatomy of an episode`` is
reached by ``#3.-Anatomy-of-an-episode``.
"""

import re
from pathlib import Path
from urllib.parse import unquote

import nbformat
import pytest

from metalearn_helpers import tools_table

NOTEBOOKS_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))
LINK = re.compile(r"\]\((?P<file>\d\d_\w+\.ipynb)?(?:#(?P<anchor>[^)\s]+))?\)")
FAQ_QUESTION = re.compile(r"^\*\*[^*]+\?\*\*", re.MULTILINE)


def heading_anchor(line: str) -> str:
    """JupyterLab's id of a Markdown heading line: its text (without the ``#``s and inline
    formatting) with spaces replaced by ``-``."""
    text = line.lstrip("#").strip()
    text = re.sub(r"[*`]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """The heading ids of every Markdown cell of a notebook (code fences skipped)."""
    found = set()
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type != "markdown":
            continue
        in_fence = False
        for line in cell.source.splitlines():
            if line.lstrip().startswith("```"):
                in_fence = not in_fence
            elif not in_fence and re.match(r"#{1,6} ", line):
                found.add(heading_anchor(line))
    return found


def markdown_texts(path: Path) -> list[str]:
    """What a reader sees as Markdown: the Markdown cells and the Markdown outputs."""
    nb = nbformat.read(path, as_version=4)
    texts = [cell.source for cell in nb.cells if cell.cell_type == "markdown"]
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            markdown = output.get("data", {}).get("text/markdown")
            if markdown:
                texts.append(markdown)
    return texts


def links(path: Path) -> list[tuple[str, str | None]]:
    """``(notebook file, anchor or None)`` of every link to a notebook or a section."""
    found = []
    for text in markdown_texts(path):
        for match in LINK.finditer(text):
            if match["file"] or match["anchor"]:
                anchor = unquote(match["anchor"]) if match["anchor"] else None
                found.append((match["file"] or path.name, anchor))
    return found


def test_heading_anchor_follows_jupyterlab():
    assert (heading_anchor("## 3. What the seed's code gets wrong, and why it matters")
            == "3.-What-the-seed's-code-gets-wrong,-and-why-it-matters")
    assert heading_anchor("### A.2 The key step: **empirical** Bayes") == (
        "A.2-The-key-step:-empirical-Bayes")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_link_reaches_an_existing_notebook_and_section(path):
    broken = []
    for target, anchor in links(path):
        if not (NOTEBOOKS_DIR / target).exists():
            broken.append(f"{target} (no such notebook)")
        elif anchor is not None and anchor not in anchors(NOTEBOOKS_DIR / target):
            broken.append(f"{target}#{anchor} (no such heading)")
    assert not broken, f"{path.name} links to {broken}"


def test_notebook_11_links_to_sections_and_every_faq_answer_has_one():
    path = NOTEBOOKS_DIR / "11_tools_trends_faq.ipynb"
    assert len([anchor for _, anchor in links(path) if anchor]) >= 20
    faq = next(cell.source for cell in nbformat.read(path, as_version=4).cells
               if cell.cell_type == "markdown" and cell.source.startswith("## 4."))
    nb_text = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells
                        if c.cell_type == "markdown")
    answers = re.split(FAQ_QUESTION, nb_text[nb_text.index(faq):nb_text.index("## Summary")])[1:]
    assert len(answers) >= 8, "the FAQ lost questions"
    for answer in answers:
        assert LINK.search(answer), f"an FAQ answer without a link: {answer[:80]!r}"


def test_every_tool_has_https_sources():
    for tool in tools_table.TOOLS:
        assert tool["sources"], tool["name"]
        assert all(url.startswith("https://") for url in tool["sources"]), tool["name"]
    rows = tools_table.tools_rows()
    assert len(rows) == len(tools_table.TOOLS)
    assert all(row["sources"].startswith("[1](https://") for row in rows)


def test_a_tool_without_a_source_is_refused():
    tool = {**tools_table.TOOLS[0], "sources": []}
    with pytest.raises(ValueError, match="needs at least one https:// source"):
        tools_table.tools_rows([tool])
    with pytest.raises(ValueError, match="learn2learn"):
        tools_table.tools_rows([{**tool, "sources": ["ftp://example.org"]}])
