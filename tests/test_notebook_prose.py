"""The notebooks' prose stays short and about the subject.

What is checked, in every notebook's markdown cells:

- **Length.** A cell holds at most ``MAX_WORDS`` words (CONTRIBUTING.md aims at ~250), collapsed
  ``<details>`` blocks included: a long solution or argument goes into cells of its own, one
  block each. A word is a run of non-space characters, as ``wc -w`` counts them, after HTML tags
  are removed; markdown and LaTeX markup count too, which errs on the strict side.
- **Summary.** The cell headed ``## Summary`` has at most ``MAX_SUMMARY_BULLETS`` top-level
  bullets.
- **Size.** Every committed notebook is under ``MAX_BYTES`` (1 MB), so that it opens quickly in
  a browser and a static viewer.
- **No project history.** Neither markdown nor code cells mention ``NOTES.md`` (a file outside
  the repository) or narrate how the course was made ("earlier run", "not committed yet", "our
  first" ...): the notebooks say what is true of the method and the data, in the present tense.

"""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
MAX_WORDS = 300
MAX_SUMMARY_BULLETS = 8
MAX_BYTES = 1_000_000
HTML_TAG = re.compile(r"<[^>]+>")
HISTORY = re.compile("|".join([
    r"NOTES\.md", r"earlier runs?\b", r"not committed yet", r"\bour first\b",
    r"the course'?s issue", r"do(?:es)? not exist yet", r"course machines",
    r"other probes", r"one of our trials", r"our own [A-Za-z]+ runs",
]), re.I)

def markdown_cells(path):
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return [(i, "".join(c["source"])) for i, c in enumerate(cells) if c["cell_type"] == "markdown"]


def cell_words(text: str) -> int:
    """Words of a markdown cell, HTML tags removed."""
    return len(HTML_TAG.sub(" ", text).split())


def summary_bullets(text: str) -> int:
    """Top-level bullets of the ``## Summary`` section of a cell (up to its next heading)."""
    section = text.split("## Summary", 1)[1]
    section = re.split(r"\n#{1,6} ", section, maxsplit=1)[0]
    return len(re.findall(r"^[-*] ", section, re.M))


def prose_problems(path) -> list[str]:
    problems = []
    for index, text in markdown_cells(path):
        n = cell_words(text)
        if n > MAX_WORDS:
            problems.append(f"cell {index}: {n} words (at most {MAX_WORDS})")
        if "## Summary" in text and summary_bullets(text) > MAX_SUMMARY_BULLETS:
            problems.append(f"cell {index}: {summary_bullets(text)} Summary bullets "
                            f"(at most {MAX_SUMMARY_BULLETS})")
    return problems


def history_mentions(path) -> list[str]:
    found = []
    for index, cell in enumerate(json.loads(path.read_text(encoding="utf-8"))["cells"]):
        text = "".join(cell["source"])
        for match in HISTORY.finditer(text):
            found.append(f"cell {index}: ...{text[max(0, match.start() - 40):match.end() + 20]}...")
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_markdown_cells_are_short(path):
    assert not prose_problems(path), "\n".join(prose_problems(path))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_project_history(path):
    assert not history_mentions(path), "\n".join(history_mentions(path))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_under_a_megabyte(path):
    assert path.stat().st_size < MAX_BYTES, f"{path.name}: {path.stat().st_size:,} bytes"


def test_words_are_counted_without_html_tags():
    text = "one two\n<details><summary>Solution</summary>\nthree</details>"
    assert cell_words(text) == 4
    assert cell_words("a " * 301) == 301


def test_summary_bullets_stop_at_the_next_heading():
    text = "## Summary\n\n- a\n- b\n  - nested\n\n## Exercises\n\n- not a summary bullet\n"
    assert summary_bullets(text) == 2


def test_history_phrases_are_found():
    assert HISTORY.search("see NOTES.md for details")
    assert HISTORY.search("Our first runs used RMSprop")
    assert not HISTORY.search("the first presentation of a class")
