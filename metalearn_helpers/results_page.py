"""The README's headline results and ``docs/RESULTS.md``, generated from the run records.

Used by ``scripts/results_table.py --write`` (which rewrites both) and
``tests/test_results_page.py`` (which fails when either is out of date); notebook
``05_metric_based`` shows :func:`lake_trials_table` and :func:`lake_conditions_table`. The
tables come from :mod:`metalearn_helpers.records`; the prose of ``docs/RESULTS.md`` from
``docs/RESULTS.template.md``, whose ``<!-- table: NAME -->`` lines are replaced by the tables of
:data:`TABLES`.
"""

from __future__ import annotations

import re
from pathlib import Path

from .application_tables import (fashion_mnist_rows, hospital_rows, maml_rl_comparison_rows,
                                 movielens_rows, rl2_bandit_rows, rl2_large_test_rows,
                                 schools_rows)
from .papers import SINUSOID_RESULTS
from .records import (WEIGHTS_DIR, load_record, load_records, markdown_table, omniglot_rows,
                      results_table)

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "docs" / "RESULTS.template.md"
RESULTS = ROOT / "docs" / "RESULTS.md"
README = ROOT / "README.md"
HEADLINE_START, HEADLINE_END = "<!-- headline results: start -->", "<!-- headline results: end -->"
HEADLINE_INSTANCES = (2, 10)  # presentations of a sequence learner shown in the headline
LAKE_RUN = "omniglot_protonet_60w1s_lake"


def lake_record(folder=WEIGHTS_DIR) -> dict:
    """The ``lake_trials`` measurement (``scripts/score_lake_trials.py``)."""
    return load_record(Path(folder) / "lake_trials.json")


def _interval(row: dict) -> str:
    low, high = row["wilson95"]
    return f"{low:.1f}–{high:.1f}"


def lake_trials_row(method: str, trained_on: str, summary: dict, source: str) -> dict:
    """One row of :func:`lake_trials_table` from a :func:`lake_trials.error_summary`."""
    return {"method": method, "trained on": trained_on, "error (%)": f"**{summary['error']:.2f}**",
            "95 % CI (Wilson, 400 trials)": _interval(summary),
            "± over the 20 runs": f"{summary['ci95_runs']:.1f}", "source": source}


def lake_trials_table(record: dict, methods=None, extra_rows=()) -> str:
    """Published errors on the 400 official trials, then the record's (those named in
    ``methods``, default all), then ``extra_rows`` (e.g. a notebook's own), as Markdown."""
    rows = [{"method": p["method"], "trained on": "–", "error (%)": f"{p['error']}",
             "95 % CI (Wilson, 400 trials)": "–", "± over the 20 runs": "–",
             "source": p["source"]} for p in record["published"]]
    for r in record["official"]:
        if methods is not None and r["method"] not in methods:
            continue
        seen = r.get("trial_characters_seen")
        trained_on = r["trained_on"] + ("" if not seen else f"; {seen} of the trials' "
                                        f"{record['trials']['characters']} characters among them")
        rows.append(lake_trials_row(r["method"], trained_on, r, "`weights/lake_trials.json`"))
    return markdown_table(rows + list(extra_rows))


def lake_conditions_table(record: dict) -> str:
    """The Lake-protocol ProtoNet on episodes between the course's test and the official runs."""
    return markdown_table([{
        "episodes (20-way 1-shot, 1 query per class)": c["condition"],
        "error (%)": f"{c['error']:.2f} ± {c['ci95']:.2f}", "episodes": f"{c['episodes']}"}
        for c in record["conditions"]])


def lake_summary(record: dict) -> str:
    """Two sentences with the Lake-protocol ProtoNet's numbers, from the record."""
    ours = next(r for r in record["official"] if r.get("run") == LAKE_RUN)
    course, *_, official = record["conditions"]
    return (f"The ProtoNet trained on the background alphabets only (`{LAKE_RUN}`) makes "
            f"{ours['error']:.2f} % errors on the 400 official trials (95 % CI "
            f"{_interval(ours)}), against {course['error']:.1f} ± {course['ci95']:.1f} % on the "
            f"course's random within-alphabet episodes with one query per class. Rebuilt from "
            f"`images_evaluation` the official trials give {official['error']:.2f} %, the same "
            f"drawings. {record['protocol']}.")


def lake_explanation(record: dict) -> str:
    """What the conditions of the record say, with their numbers."""
    error = [f"{c['error']:.1f} %" for c in record["conditions"]]
    return (f"Restricting the course's random episodes ({error[0]}) to the trials' 10 alphabets "
            f"gives {error[1]}; one drawer pair per episode, as in the runs, {error[2]}, and only "
            f"the 8 drawers the runs use, {error[3]}. The runs' own characters with a random "
            f"drawer pair give {error[5]}; each run's own drawer pair with random characters of "
            f"its alphabet {error[7]}; both together, the official trials, {error[8]}. So the "
            f"alphabets and the one-drawer-per-side design explain little: the official trials "
            f"are easier because of the particular drawings of their 20 runs (which characters, "
            f"drawn by which two drawers), above all the drawer pairs. Their error is measured "
            f"on 20 runs, so its interval is wide.")


def lake_section(record: dict) -> str:
    return "\n\n".join([lake_summary(record), lake_trials_table(record),
                        "What makes the official trials easier, one change at a time (the "
                        "Lake-protocol ProtoNet, mean ± 95 % CI over episodes):",
                        lake_conditions_table(record), lake_explanation(record)])


def _sinusoid_headline(records: list[dict]) -> list[dict]:
    rows = []
    for name, paper in SINUSOID_RESULTS.items():
        record = next((r for r in records if r["name"] == f"sinusoid_{name}"), None)
        for steps in (1, 10) if record else ():
            row = next(t for t in record["test"] if t["k_shot"] == 5 and t["inner_steps"] == steps)
            low, high = row["mse"] - row["ci95"], row["mse"] + row["ci95"]
            rows.append({"run": record["name"], "setting": f"sinusoid K = 5, MSE after {steps} "
                         f"step{'s' if steps > 1 else ''}", "ours": f"{row['mse']:.2f} ± "
                         f"{row['ci95']:.2f}", "paper": f"{paper[steps]}", "verdict":
                         "within" if low <= paper[steps] <= high else
                         f"{'higher' if low > paper[steps] else 'lower'} error than the paper"})
    return rows


def _lake_headline(record: dict) -> dict:
    ours = next(r for r in record["official"] if r.get("run") == LAKE_RUN)
    low, high = ours["wilson95"]
    inside = [p["method"] for p in record["published"] if low <= p["error"] <= high]
    above = [p["method"] for p in record["published"] if p["error"] > high]
    verdict = "; ".join(filter(None, [
        f"{' and '.join(inside)} within our CI" if inside else "",
        f"fewer errors than the {' and '.join(above)}" if above else ""]))
    return {"run": LAKE_RUN, "setting": "Lake's 400 official trials, 20-way 1-shot, error",
            "ours": f"{ours['error']:.2f} % (CI {_interval(ours)})",
            "paper": ", ".join(f"{p['method']} {p['error']} %" for p in record["published"]),
            "verdict": verdict}


def headline_table(records: list[dict], lake: dict) -> str:
    """The README's table: every record's test on its paper's own test (Omniglot; sequence
    learners at the 2nd and 10th presentation), the Lake trials, and MAML's sinusoids."""
    rows = []
    for row in omniglot_rows(records):
        instance = re.search(r"presentation (\d+)$", row["test task"])
        if row["target"] == "–" or (instance and int(instance[1]) not in HEADLINE_INSTANCES):
            continue
        rows.append({"run": row["run"], "setting": row["test task"],
                     "ours": row["test accuracy (600 episodes)"], "paper": row["paper"],
                     "verdict": row["target"]})
    return markdown_table(rows + [_lake_headline(lake)] + _sinusoid_headline(records))


def record_protocol(records: list[dict], prefix: str) -> str:
    """The protocol of the first record whose name starts with ``prefix`` (its own field, or its
    first test's), with Sphinx roles and double backquotes turned into Markdown code."""
    record = next(r for r in records if r["name"].startswith(prefix))
    text = record.get("protocol") or record["tests"][0]["protocol"]
    text = re.sub(r":\w+:`~?([^`]+)`", r"`\1`", text).replace("``", "`")
    return f"Protocol (from the records): {text.strip()}"


def with_protocol(table: str, records: list[dict], prefix: str) -> str:
    return f"{table}\n\n{record_protocol(records, prefix)}"


MOVIELENS_STATES = {"user_cold_state": "new users, existing items",
                    "user_and_item_cold_state": "new users, new items"}


def movielens_tables(records: list[dict]) -> str:
    """MAE of every MovieLens method in MeLU's two cold-start states, then the protocol."""
    tables = [f"{label} (`{state}`), MAE:\n\n{markdown_table(movielens_rows(records, state))}"
              for state, label in MOVIELENS_STATES.items()]
    return with_protocol("\n\n".join(tables), records, "movielens_")


TABLES = {
    "omniglot": lambda records, lake: results_table([r for r in records
                                                     if r["name"].startswith("omniglot_")]),
    "sinusoid": lambda records, lake: results_table([r for r in records
                                                     if r["name"].startswith("sinusoid_")]),
    "lake": lambda records, lake: lake_section(lake),
    "maml_rl": lambda records, lake: markdown_table(maml_rl_comparison_rows(records)),
    "rl2": lambda records, lake: markdown_table(rl2_bandit_rows(records)),
    "rl2_large": lambda records, lake: markdown_table(rl2_large_test_rows(records)),
    "fashion_mnist": lambda records, lake: with_protocol(
        markdown_table(fashion_mnist_rows(records)), records, "fashion_mnist_"),
    "hospitals": lambda records, lake: with_protocol(
        markdown_table(hospital_rows(records)), records, "hospitals_"),
    "schools": lambda records, lake: with_protocol(
        markdown_table(schools_rows(records)), records, "schools_"),
    "movielens": lambda records, lake: movielens_tables(records),
}


def results_page(records: list[dict] | None = None, lake: dict | None = None,
                 template: str | None = None) -> str:
    """The text of ``docs/RESULTS.md``."""
    records = load_records() if records is None else records
    lake = lake_record() if lake is None else lake
    text = TEMPLATE.read_text() if template is None else template

    def table(match):
        if match[1] not in TABLES:
            raise ValueError(f"{TEMPLATE.name}: unknown table {match[1]!r}; known: "
                             f"{sorted(TABLES)}.")
        return TABLES[match[1]](records, lake)

    body = re.sub(r"^<!-- table: (\w+) -->$", table, text, flags=re.M)
    return ("<!-- Generated by scripts/results_table.py --write; edit docs/RESULTS.template.md. "
            "-->\n" + body)


def readme_with_headline(readme: str, records: list[dict] | None = None,
                         lake: dict | None = None) -> str:
    """``readme`` with the text between its headline markers replaced by :func:`headline_table`."""
    records = load_records() if records is None else records
    lake = lake_record() if lake is None else lake
    start, end = readme.find(HEADLINE_START), readme.find(HEADLINE_END)
    if start < 0 or end < start:
        raise ValueError(f"the README must hold the lines {HEADLINE_START} and {HEADLINE_END}.")
    return (readme[:start + len(HEADLINE_START)] + "\n\n" + headline_table(records, lake)
            + "\n\n" + readme[end:])
