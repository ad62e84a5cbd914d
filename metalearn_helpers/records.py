"""Run records: one format for every committed run, its weights, and the results tables.

Defined in notebook ``04_maml_omniglot`` and read by notebooks 03-06, ``scripts/results_table.py``
and the README. A run writes ``weights/<name>.npz`` (:func:`save_weights`), ``<name>.json`` (its
record, :func:`write_record`) and ``<name>.history.json`` (its learning curves).

The schema every record follows, checked on every load and write, is in
:mod:`metalearn_helpers.record_schema`.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
from pathlib import Path

import keras
import numpy as np

from .papers import (HUMAN_RESULTS_BY_INSTANCE, INSTANCES, OMNIGLOT_RESULTS, OMNIGLOT_SETTINGS,
                     RESULTS_BY_INSTANCE)
from .record_schema import RecordError, check_record

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
QUERIES_PER_CLASS = 15  # the course's own Omniglot test: 15 query drawings per class


# -- reading and writing --------------------------------------------------------------------------
def load_record(path) -> dict:
    """One record, checked against the schema."""
    path = Path(path)
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise RecordError(f"{path} is not valid JSON: {error}") from None
    return check_record(record, str(path))


def load_records(folder=WEIGHTS_DIR, prefix: str = "") -> list[dict]:
    """The run records ``<prefix>*.json`` in ``folder`` (the committed ``weights/`` by default),
    checked, without the ``*.history.json`` learning curves that sit beside them."""
    return [load_record(p) for p in sorted(Path(folder).glob(f"{prefix}*.json"))
            if not p.name.endswith(".history.json")]


def write_record(path, record: dict) -> None:
    """Write ``record`` with the date, the machine and the git commit added, after checking it."""
    record = {**record, "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
        timespec="seconds"), "machine": machine_description(), "git_commit": git_commit()}
    check_record(record, str(path))
    Path(path).write_text(json.dumps(record, indent=2) + "\n")


# -- weights and machine -------------------------------------------------------------------------
def _stored_variables(algorithm) -> list:
    """What a trained learner needs at test time: its meta-variables, and Reptile's inner
    optimiser state."""
    return list(algorithm.meta_variables) + list(getattr(algorithm, "inner_state", []))


def save_weights(algorithm, path) -> None:
    """Save the meta-learned variables (initialisation, Meta-SGD's learning rates, Reptile's
    inner optimiser state)."""
    arrays = {f"{i:03d}": np.asarray(v.numpy())
              for i, v in enumerate(_stored_variables(algorithm))}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)


def load_weights(algorithm, path) -> None:
    """Load weights saved by :func:`save_weights`; a mismatch raises a clear ``ValueError``."""
    with np.load(path) as saved:
        arrays = [saved[k] for k in sorted(saved.files)]
    variables = _stored_variables(algorithm)
    shapes = [tuple(v.shape) for v in variables]
    if [a.shape for a in arrays] != shapes:
        raise ValueError(f"{path} holds weights of shapes {[a.shape for a in arrays]}, but this "
                         f"model has {shapes}: it was saved for a different model or algorithm.")
    for variable, array in zip(variables, arrays):
        variable.assign(array)


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux), so that a record's seconds per step
    can be read against the machine that measured them; ``platform.processor()`` elsewhere."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_description() -> dict:
    import tensorflow as tf

    return {"platform": platform.platform(), "processor": platform.machine(),
            "cpu_model": cpu_model(), "cpu_count": os.cpu_count(),
            "python": platform.python_version(), "tensorflow": tf.__version__,
            "keras": keras.__version__}


def git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True, cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None




# -- versus the paper -----------------------------------------------------------------------------
def paper_test_query(name: str, k_shot: int) -> int | None:
    """Query drawings per class in the test episodes of algorithm ``name``'s paper code at
    ``k_shot`` shots (MAML's code: K, Reptile's: 1), or ``None`` where the course's 15 are the
    paper's test too."""
    value = OMNIGLOT_SETTINGS.get(name, {}).get("paper_test_query")
    return k_shot if value == "k_shot" else value


def versus_paper(accuracy: float, ci95: float, paper_accuracy: float,
                 paper_ci95: float | None) -> str:
    """The course's target, "within the paper's 95 % CI or above it", applied to one result (%).

    Against a published interval our mean must reach its lower end; against a number published
    without one, our interval must reach it. Returns ``"above"``, ``"within"`` or
    ``"below by X points"`` (X the gap to the nearest acceptable value).
    """
    if paper_ci95 is None:
        low, high = accuracy - ci95, accuracy + ci95
        if low > paper_accuracy:
            return "above"
        return "within" if high >= paper_accuracy else f"below by {paper_accuracy - high:.2f} points"
    if accuracy > paper_accuracy + paper_ci95:
        return "above"
    gap = paper_accuracy - paper_ci95 - accuracy
    return "within" if gap <= 0 else f"below by {gap:.2f} points"




def target(record: dict, test: dict) -> str:
    """The course's target for one test of a record: the paper's 95 % CI or above, judged only on
    the paper's own test (its query count; Reptile's transductive numbers on the transductive
    test); ``"–"`` for other tests or where the paper gives no number."""
    paper = test["paper_result"]
    if "instance" not in test:
        paper_query = paper_test_query(record["algorithm"], test["k_shot"]) or QUERIES_PER_CLASS
        if test.get("n_query", QUERIES_PER_CLASS) != paper_query:
            return "–"
        paper = test.get("paper_result_transductive", paper)
    if paper["accuracy"] is None:
        return "–"
    return versus_paper(test["accuracy"], test["ci95"], paper["accuracy"], paper["ci95"])


# -- results tables -------------------------------------------------------------------------------
def _paper_text(test: dict) -> str:
    paper = test["paper_result"]
    text = ("n/a" if paper["accuracy"] is None else f"{paper['accuracy']} %"
            if paper["ci95"] is None else f"{paper['accuracy']} ± {paper['ci95']} %")
    if "paper_result_transductive" in test:  # Reptile reports both
        text += (f" (transductive: {test['paper_result_transductive']['accuracy']}"
                 f" ± {test['paper_result_transductive']['ci95']} %)")
    return text


def _test_task(record: dict, test: dict) -> str:
    if "instance" in test:  # sequence learners (MANN, LSTM): Santoro et al.'s Table 1
        return (f"{test['n_way']} classes x {test['k_shot']} instances, presentation "
                f"{test['instance']}")
    task = f"{test['n_way']}-way {test['k_shot']}-shot"
    if record.get("protocol") == "lake":
        task += " within an alphabet (Lake)"
    if "adaptation" in test:  # the baseline, scored with each test-time adaptation
        task += f", {test['adaptation']}"
    n_query = test.get("n_query", QUERIES_PER_CLASS)
    if n_query != QUERIES_PER_CLASS:  # MAML family: the paper code's test
        task += f", {n_query} quer{'y' if n_query == 1 else 'ies'} per class (paper's code)"
    return task


def omniglot_rows(records: list[dict]) -> list[dict]:
    """One row per test of every Omniglot record: run, test task, accuracy, paper, steps,
    seconds per step and the target verdict, as strings."""
    return [{"run": r["name"], "test task": _test_task(r, t),
             "test accuracy (600 episodes)": f"{t['accuracy']:.2f} ± {t['ci95']:.2f} %",
             "paper": _paper_text(t),
             "steps trained / planned": f"{r['steps']:,} / {r['planned_steps']:,}",
             "s per step": f"{r['seconds_per_step']:.2f}", "target": target(r, t)}
            for r in records if r["name"].startswith("omniglot_") for t in r["tests"]]


def _mse_cell(row: dict) -> str:
    """Mean ± CI over the tasks that did not diverge, and (†n) when n tasks did."""
    if row["mse"] is None:
        return f"all {row['diverged']} diverged"
    diverged = row["diverged"]
    return f"{row['mse']:.2f} ± {row['ci95']:.2f}" + (f" (†{diverged})" if diverged else "")


def sinusoid_rows(records: list[dict], steps=(1, 5, 10)) -> list[dict]:
    """One row per shot count of every sinusoid record: query MSE after each of ``steps``."""
    rows = []
    for r in (r for r in records if r["name"].startswith("sinusoid_")):
        for k_shot in sorted({t["k_shot"] for t in r["test"]}):
            by_steps = {t["inner_steps"]: t for t in r["test"] if t["k_shot"] == k_shot}
            rows.append({"run": r["name"], "K": str(k_shot),
                         **{("MSE after 1 step" if s == 1 else f"after {s}"):
                            _mse_cell(by_steps[s]) if s in by_steps else "" for s in steps},
                         "meta-steps": f"{r['steps']:,}"})
    return rows


def markdown_table(rows: list[dict]) -> str:
    """Rows of equal keys as a Markdown table (the keys are the header)."""
    if not rows:
        return "(no records)"
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(["---"] * len(header)) + " |"]
    return "\n".join(lines + ["| " + " | ".join(row[h] for h in header) + " |" for row in rows])


def results_table(records: list[dict] | None = None, *, algorithms=None,
                  protocol: str | None = None, extra_rows=()) -> str:
    """The results table of the README and notebooks 04-06, as Markdown: Omniglot rows (see
    :func:`omniglot_rows`) and, when there are no Omniglot records among them, sinusoid rows.

    Args:
        records: default: every committed record (:func:`load_records`).
        algorithms: keep only records of these algorithms (names of ``papers.OMNIGLOT_SETTINGS``).
        protocol: keep only records of this Omniglot protocol (``"vinyals"`` or ``"lake"``).
        extra_rows: rows of the same columns to append, e.g. a notebook's live measurements.
    """
    records = load_records() if records is None else records
    if algorithms is not None:
        unknown = sorted(set(algorithms) - {r.get("algorithm") for r in records} -
                         set(OMNIGLOT_SETTINGS))
        if unknown:
            raise ValueError(f"unknown algorithm(s) {unknown}; known: {sorted(OMNIGLOT_SETTINGS)}.")
        records = [r for r in records if r.get("algorithm") in algorithms]
    if protocol is not None:
        records = [r for r in records if r.get("protocol", "vinyals") == protocol]
    rows = omniglot_rows(records) or sinusoid_rows(records)
    return markdown_table(rows + list(extra_rows))


def score_row(run: str, algorithm: str | None, n_way: int, k_shot: int, score) -> dict:
    """A row of :func:`omniglot_rows`' columns for a score measured in a notebook (a
    :class:`~metalearn_helpers.evaluation.ScoreWithCI` of accuracies in [0, 1]), next to the
    published number of ``algorithm`` for that setting; for ``extra_rows`` of
    :func:`results_table`."""
    published = OMNIGLOT_RESULTS.get((algorithm, n_way, k_shot))
    paper = ("n/a" if published is None else f"{published[0]} %" if published[1] is None
             else f"{published[0]} ± {published[1]} %")
    return {"run": run, "test task": f"{n_way}-way {k_shot}-shot",
            "test accuracy (600 episodes)": f"{100 * score.mean:.2f} ± {100 * score.ci95:.2f} % "
                                            f"({score.n} episodes)",
            "paper": paper, "steps trained / planned": "–", "s per step": "–", "target": "–"}


def instance_table(records: list[dict], live: dict | None = None) -> str:
    """Santoro et al.'s Table 1 layout as Markdown: accuracy (%) at each presentation of
    :data:`papers.INSTANCES` for notebook-measured curves ``live`` (``{label: {k:
    ScoreWithCI}}``), for every sequence learner's record, and the paper's and the humans' rows."""
    columns = INSTANCES
    rows = [{"learner": label, **{f"presentation {k}": f"{100 * s[k].mean:.1f} ± "
                                                       f"{100 * s[k].ci95:.1f}" for k in columns}}
            for label, s in (live or {}).items()]
    for r in records:
        by_k = {t["instance"]: t for t in r["tests"] if "instance" in t}
        if by_k:
            rows.append({"learner": f"{r['name']}, record ({r['steps']:,} meta-steps)",
                         **{f"presentation {k}": f"**{by_k[k]['accuracy']:.1f} ± "
                                                 f"{by_k[k]['ci95']:.1f}**" if k in by_k else "–"
                            for k in columns}})
    for name in ("mann", "lstm"):
        rows.append({"learner": f"{name.upper()}, paper",
                     **{f"presentation {k}": f"{RESULTS_BY_INSTANCE[name][k]}" for k in columns}})
    rows.append({"learner": "humans, paper",
                 **{f"presentation {k}": f"{HUMAN_RESULTS_BY_INSTANCE[k]}" for k in columns}})
    return markdown_table(rows)


def _record_tests(records: list[dict], name: str) -> list[tuple[dict, dict]]:
    return [(r, t) for r in records if r["algorithm"] == name for t in r["tests"]]


def _method_accuracy(records: list[dict], name: str, adaptation, k_shot: int) -> str:
    """A method's 5-way ``k_shot`` accuracy on the course's test (15 queries per class), or, for
    a sequence learner, its accuracy at the 2nd presentation (in the 1-shot column)."""
    if OMNIGLOT_SETTINGS[name].get("evaluation") == "by_instance":
        found = [(r, t) for r, t in _record_tests(records, name) if t.get("instance") == 2]
        if k_shot != 1 or not found:
            return "–" if k_shot != 1 else "no record"
        r, t = found[0]
        return f"2nd presentation: {t['accuracy']:.1f} ± {t['ci95']:.1f} ({r['steps']:,} steps)"
    found = [(r, t) for r, t in _record_tests(records, name)
             if (t["n_way"], t["k_shot"]) == (5, k_shot) and t.get("adaptation") == adaptation
             and "instance" not in t and t["n_query"] == QUERIES_PER_CLASS]
    if not found:
        return "no record"
    r, t = found[0]
    return (f"**{t['accuracy']:.1f} ± {t['ci95']:.1f}** ({r['steps']:,} steps"
            + ("" if r["finished"] else ", unfinished") + ")")


def method_row(label: str, one_shot: str, five_shot: str, seconds: str, meta_batch: str,
               parameters: int) -> dict:
    """One row of :func:`method_table` (also for a notebook's live runs)."""
    return {"method": label, "5-way 1-shot (%)": one_shot, "5-way 5-shot (%)": five_shot,
            "s / meta-step (1-shot / 5-shot)": seconds, "meta-batch": meta_batch,
            "parameters": f"{parameters:,}"}


def method_table(records: list[dict], methods, parameters: dict, extra_rows=()) -> str:
    """Every method side by side (notebook 06, section 4), as Markdown: for each ``(algorithm,
    label, adaptation)`` of ``methods``, its records' 5-way 1- and 5-shot accuracy, seconds per
    meta-step, meta-batch and ``parameters[algorithm]`` (meta-learned numbers)."""
    rows = []
    for name, label, adaptation in methods:
        setting = OMNIGLOT_SETTINGS[name]
        by_shot = sorted(_record_tests(records, name), key=lambda pair: pair[0]["k_shot"])
        seconds = dict.fromkeys(f"{r['seconds_per_step']:.2f}" for r, _ in by_shot)
        rows.append(method_row(
            label, _method_accuracy(records, name, adaptation, 1),
            _method_accuracy(records, name, adaptation, 5), " / ".join(seconds) or "–",
            f"{setting['batch_size']} images" if "batch_size" in setting else
            f"{setting.get('train_way', 5)}-way × {setting['meta_batch_size']}", parameters[name]))
    return markdown_table(rows + list(extra_rows))


# -- notebook 09: the return-vs-adaptation-steps table ---------------------------------------------
def maml_rl_rows(rows: list[dict]) -> list[dict]:
    """The return-vs-adaptation-steps table (the numbers of the paper's Figure 4): one row per
    method, one column per number of steps, "mean ± CI" strings, for :func:`markdown_table`."""
    steps = sorted({r["adaptation_steps"] for r in rows})
    table = {}
    for r in rows:
        table.setdefault(r["method"], {"method": r["method"], **dict.fromkeys(
            (f"{k} step{'' if k == 1 else 's'}" for k in steps), "")})
        label = f"{r['adaptation_steps']} step{'' if r['adaptation_steps'] == 1 else 's'}"
        table[r["method"]][label] = f"{r['average_return']:.1f} ± {r['ci95']:.1f}"
    return list(table.values())
