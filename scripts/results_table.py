"""Print the results of the committed runs (weights/*.json) as Markdown tables, for the README.

    python scripts/results_table.py
"""

from __future__ import annotations

import json
from pathlib import Path

from metalearn_helpers.experiments import paper_test_query, versus_paper

WEIGHTS = Path(__file__).resolve().parents[1] / "weights"


def records(prefix: str) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(WEIGHTS.glob(f"{prefix}*.json"))
            if not p.name.endswith(".history.json")]


def omniglot_table() -> str:
    lines = ["| run | test task | test accuracy (600 episodes) | paper | steps trained / planned | "
             "s per step | target |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in records("omniglot_"):
        for test in r.get("tests", [{**r["test"], "n_way": r["n_way"], "k_shot": r["k_shot"],
                                     "paper_result": r["paper_result"]}]):
            paper = test["paper_result"]
            paper_text = ("n/a" if paper["accuracy"] is None else f"{paper['accuracy']} %"
                          if paper["ci95"] is None else f"{paper['accuracy']} ± {paper['ci95']} %")
            if "paper_result_transductive" in test:  # Reptile reports both
                paper_text += (f" (transductive: {test['paper_result_transductive']['accuracy']}"
                               f" ± {test['paper_result_transductive']['ci95']} %)")
            where = " within an alphabet (Lake)" if r.get("protocol") == "lake" else ""
            if "adaptation" in test:  # the baseline, scored with each test-time adaptation
                where += f", {test['adaptation']}"
            if "instance" not in test and test.get("n_query", 15) != 15:  # MAML family: paper test
                where += (f", {test['n_query']} quer{'y' if test['n_query'] == 1 else 'ies'} "
                          "per class (paper's code)")
            task = (f"{test['n_way']}-way {test['k_shot']}-shot" if "instance" not in test else
                    f"{test['n_way']} classes x {test['k_shot']} instances, presentation "
                    f"{test['instance']}")  # sequence learners (MANN, LSTM): Santoro et al.
            lines.append(f"| {r['name']} | {task}{where} | "
                         f"{test['accuracy']:.2f} ± {test['ci95']:.2f} % | {paper_text} | "
                         f"{r['steps']:,} / {r['planned_steps']:,} | "
                         f"{r['seconds_per_step']:.2f} | {target(r, test)} |")
    return "\n".join(lines)


def target(record: dict, test: dict) -> str:
    """The issues' target for this row: the paper's 95 % CI or above, judged only on the paper's
    own test (its query count; Reptile's transductive numbers on the transductive test)."""
    paper = test["paper_result"]
    if "instance" not in test:
        paper_query = paper_test_query(record["algorithm"], test["k_shot"]) or 15
        if test.get("n_query", 15) != paper_query:
            return "–"
        paper = test.get("paper_result_transductive", paper)
    if paper["accuracy"] is None:
        return "–"
    return versus_paper(test["accuracy"], test["ci95"], paper["accuracy"], paper["ci95"])


def mse_cell(test: dict) -> str:
    """Mean ± CI over the tasks that did not diverge, and (†n) when n tasks did."""
    diverged = test.get("diverged", 0)
    return f"{test['mse']:.2f} ± {test['ci95']:.2f}" + (f" (†{diverged})" if diverged else "")


def sinusoid_table() -> str:
    lines = ["| run | K | MSE after 1 step | after 5 | after 10 | meta-steps |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in records("sinusoid_"):
        for k_shot in sorted({t["k_shot"] for t in r.get("test", [])}):
            by_steps = {t["inner_steps"]: t for t in r["test"] if t["k_shot"] == k_shot}
            cells = [mse_cell(by_steps[s]) if s in by_steps else "" for s in (1, 5, 10)]
            lines.append(f"| {r['name']} | {k_shot} | " + " | ".join(cells)
                         + f" | {r['steps']:,} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(omniglot_table())
    print()
    print(sinusoid_table())
