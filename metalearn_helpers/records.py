"""Run records: one format for every committed run, its weights, and the results tables.

Defined in notebook ``04_maml_omniglot`` and read by notebooks 03-06, ``scripts/results_table.py``
and the README. A run writes ``weights/<name>.npz`` (:func:`save_weights`), ``<name>.json`` (its
record, :func:`write_record`) and ``<name>.history.json`` (its learning curves).

Record schema (checked by :func:`check_record` on every load and write; a record that does not
match raises :class:`RecordError` naming the file, the field and what is expected):

- every record: ``name`` (str), ``algorithm`` (str), ``paper`` (str, the citation),
  ``hyperparameters`` (dict), ``steps`` and ``planned_steps`` (int, meta-steps trained and
  planned), ``finished`` (bool), ``seed`` (int), ``train_seconds`` and ``seconds_per_step``
  (numbers), ``command`` (str, what produced it), ``date`` (str, ISO 8601), ``machine`` (dict, see
  :func:`machine_description`), ``git_commit`` (str or null), ``test`` (the main test).
- Omniglot (``name`` starts with ``omniglot_``): ``n_way``, ``k_shot`` (int), ``protocol``
  (str), ``tests``: a list of tests, each ``n_way``, ``k_shot``, ``episodes``, ``n_query`` (int),
  ``accuracy``, ``ci95`` (numbers, %), ``protocol`` (str), ``paper_result`` (``{"accuracy",
  "ci95"}``, numbers or null), and optionally ``adaptation`` (the baseline's test-time
  adaptation), ``instance`` (sequence learners: the k-th presentation of a class),
  ``paper_result_transductive`` and ``paper_result_miniimagenet``.
- A measurement without training (``"kind": "measurement"``, e.g. ``bandit_baselines``): only
  ``name``, ``protocol``, ``seed``, ``command``, ``date``, ``machine`` and ``git_commit`` are
  required. ``lake_trials`` (``scripts/score_lake_trials.py``) also needs ``official`` (rows
  ``method``, ``trained_on`` (str), ``errors``, ``trials`` (int), ``error``, ``ci95_runs``
  (numbers, %), ``wilson95`` (list)), ``conditions`` (rows ``condition`` (str), ``episodes``
  (int), ``error``, ``ci95`` (numbers, %)) and ``published`` (rows ``method``, ``source`` (str),
  ``error`` (number, %)). ``maml_step_benchmark`` (``benchmarks/maml_step.py --record``): see
  the section "benchmarks/maml_step.py" at the end.
- Sinusoid (``name`` starts with ``sinusoid_``): ``test`` is a list of rows ``k_shot``,
  ``inner_steps``, ``episodes``, ``diverged`` (int) and ``mse``, ``ci95`` (numbers, or null when
  every task diverged).
"""

from __future__ import annotations

import datetime
import json
import numbers
import os
import platform
import subprocess
from pathlib import Path

import keras
import numpy as np

from .papers import (HUMAN_RESULTS_BY_INSTANCE, INSTANCES, OMNIGLOT_RESULTS, OMNIGLOT_SETTINGS,
                     RESULTS_BY_INSTANCE)

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
QUERIES_PER_CLASS = 15  # the course's own Omniglot test: 15 query drawings per class


class RecordError(ValueError):
    """A run record that does not follow the schema of :mod:`metalearn_helpers.records`."""


# -- schema ---------------------------------------------------------------------------------------
_NUMBER, _INT, _TEXT = "a number", "an int", "a string"
RECORD_FIELDS = {"name": _TEXT, "algorithm": _TEXT, "paper": _TEXT, "hyperparameters": "a dict",
                 "steps": _INT, "planned_steps": _INT, "finished": "a bool", "seed": _INT,
                 "train_seconds": _NUMBER, "seconds_per_step": _NUMBER, "command": _TEXT,
                 "date": _TEXT, "machine": "a dict", "git_commit": "a string or null"}
# A measurement without training (e.g. the bandit baselines of notebook 09): ``"kind":
# "measurement"``, what was measured and how, and where.
MEASUREMENT_FIELDS = {"name": _TEXT, "protocol": _TEXT, "seed": _INT, "command": _TEXT,
                      "date": _TEXT, "machine": "a dict", "git_commit": "a string or null"}
OMNIGLOT_FIELDS = {"n_way": _INT, "k_shot": _INT, "protocol": _TEXT, "tests": "a list"}
OMNIGLOT_TEST_FIELDS = {"n_way": _INT, "k_shot": _INT, "episodes": _INT, "n_query": _INT,
                        "accuracy": _NUMBER, "ci95": _NUMBER, "protocol": _TEXT,
                        "paper_result": "a dict"}
LAKE_TRIALS_ROWS = {  # the lake_trials measurement: field -> the fields of each of its rows
    "official": {"method": _TEXT, "trained_on": _TEXT, "errors": _INT, "trials": _INT,
                 "error": _NUMBER, "ci95_runs": _NUMBER, "wilson95": "a list"},
    "conditions": {"condition": _TEXT, "episodes": _INT, "error": _NUMBER, "ci95": _NUMBER},
    "published": {"method": _TEXT, "source": _TEXT, "error": _NUMBER}}
SINUSOID_TEST_FIELDS = {"k_shot": _INT, "inner_steps": _INT, "episodes": _INT, "diverged": _INT,
                        "mse": "a number or null", "ci95": "a number or null"}


def _matches(value, expected: str) -> bool:
    kinds = {_NUMBER: lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool),
             _INT: lambda v: isinstance(v, int) and not isinstance(v, bool),
             _TEXT: lambda v: isinstance(v, str), "a dict": lambda v: isinstance(v, dict),
             "a list": lambda v: isinstance(v, list), "a bool": lambda v: isinstance(v, bool),
             "a string or null": lambda v: v is None or isinstance(v, str),
             "a number or null": lambda v: v is None or kinds[_NUMBER](v)}
    return kinds[expected](value)


def _check_fields(mapping, fields: dict, where: str) -> None:
    if not isinstance(mapping, dict):
        raise RecordError(f"{where} must be a JSON object, got {type(mapping).__name__}.")
    for field, expected in fields.items():
        if field not in mapping:
            raise RecordError(f"{where} lacks the field {field!r} ({expected}); a record needs "
                              f"{', '.join(fields)} (see metalearn_helpers.records).")
        if not _matches(mapping[field], expected):
            raise RecordError(f"{where}: {field!r} must be {expected}, got "
                              f"{mapping[field]!r}.")


def _check_rows(record: dict, rows: dict, source: str) -> None:
    """Each ``record[field]`` is a list of rows with the fields ``rows[field]``."""
    _check_fields(record, {field: "a list" for field in rows}, source)
    for field, fields in rows.items():
        for i, row in enumerate(record[field]):
            _check_fields(row, fields, f"{source}, {field}[{i}]")


def check_record(record, source: str = "record") -> dict:
    """Return ``record`` if it follows the schema (module docstring), else raise
    :class:`RecordError` naming ``source``, the field and what it must be."""
    if isinstance(record, dict) and record.get("kind") == "measurement":
        _check_fields(record, MEASUREMENT_FIELDS, source)
        if record["name"] == "lake_trials":
            _check_rows(record, LAKE_TRIALS_ROWS, source)
        if record["name"] == MAML_STEP_BENCHMARK:
            check_maml_step_benchmark(record, source)
        if record["name"].startswith(MAML_RL_PREFIX):
            check_maml_rl_record(record, source)
        return record
    _check_fields(record, RECORD_FIELDS, source)
    if record["name"].startswith("omniglot_"):
        _check_fields(record, OMNIGLOT_FIELDS, source)
        for i, test in enumerate(record["tests"]):
            _check_fields(test, OMNIGLOT_TEST_FIELDS, f"{source}, tests[{i}]")
    elif record["name"].startswith("sinusoid_"):
        if not isinstance(record["test"], list):
            raise RecordError(f"{source}: a sinusoid record's 'test' must be a list of rows.")
        for i, row in enumerate(record["test"]):
            _check_fields(row, SINUSOID_TEST_FIELDS, f"{source}, test[{i}]")
    elif record["name"].startswith(APPLICATION_PREFIXES):  # notebook 07, section at the end
        check_application_record(record, source)
    elif record["name"].startswith(PERSONALISATION_PREFIXES):
        check_personalisation_record(record, source)
    elif record["name"].startswith(MAML_RL_PREFIX):  # notebook 09, section at the end
        check_maml_rl_record(record, source)
    return record


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


# -- notebook 07: applications (Fashion-MNIST few-shot, hospitals as tasks) ----------------------
# Schema of the records of ``scripts/train_fashion_mnist.py`` and ``evaluate_cross_domain.py``
# (``fashion_mnist_*``: ``n_way``, ``k_shot`` and ``tests``, each with the method, the data it was
# trained on, optionally the Omniglot ``run`` it comes from, and its Fashion-MNIST accuracy) and
# of ``scripts/train_hospitals.py`` (``hospitals_*``: the held-out ``hospital``, its
# ``prevalence``, the ``protocol`` and ``tests``, one per method and K, with accuracy (%) and ROC
# AUC, mean and 95 % CI over draws; ``anchor``: Detrano et al.'s protocol, or null for Cleveland).
APPLICATION_PREFIXES = ("fashion_mnist_", "hospitals_")
FASHION_MNIST_FIELDS = {"n_way": _INT, "k_shot": _INT, "tests": "a list"}
FASHION_MNIST_TEST_FIELDS = {"method": _TEXT, "trained_on": _TEXT, "n_way": _INT, "k_shot": _INT,
                             "episodes": _INT, "n_query": _INT, "accuracy": _NUMBER,
                             "ci95": _NUMBER, "protocol": _TEXT}
HOSPITAL_FIELDS = {"hospital": _TEXT, "prevalence": _NUMBER, "protocol": _TEXT, "tests": "a list"}
HOSPITAL_TEST_FIELDS = {"method": _TEXT, "hospital": _TEXT, "k_shot": _INT, "accuracy": _NUMBER,
                        "ci95": _NUMBER, "auc": _NUMBER, "auc_ci95": _NUMBER, "draws": _INT,
                        "n_test": _INT}


def check_application_record(record: dict, source: str = "record") -> dict:
    """The notebook-07 part of :func:`check_record` (schema above)."""
    fashion = record["name"].startswith("fashion_mnist_")
    fields, test_fields = ((FASHION_MNIST_FIELDS, FASHION_MNIST_TEST_FIELDS) if fashion
                           else (HOSPITAL_FIELDS, HOSPITAL_TEST_FIELDS))
    _check_fields(record, fields, source)
    for i, test in enumerate(record["tests"]):
        _check_fields(test, test_fields, f"{source}, tests[{i}]")
    return record


# -- notebook 08: learning for each person (schools_*, movielens_* records) ----------------------
# Schema: ``test`` is a list of rows. ``schools_<method>``: ``k_shot`` (int), ``mse``, ``ci95``
# (numbers: query MSE of held-out schools, mean and 95 % CI over schools), ``schools`` (int) and
# ``values`` (list: each school's MSE, in the order of the record's ``schools_order``).
# ``movielens_<method>``: ``state`` (str), ``k_shot`` (int, or null for "all the user's other
# ratings"), ``mae``, ``mae_ci95``, ``ndcg3``, ``ndcg3_ci95`` (numbers, 95 % CI over users) and
# ``users`` (int). Both also carry ``protocol`` (str) and ``folds`` (int).
PERSONALISATION_PREFIXES = ("schools_", "movielens_")
SCHOOLS_TEST_FIELDS = {"k_shot": _INT, "mse": _NUMBER, "ci95": _NUMBER, "schools": _INT,
                       "values": "a list"}
MOVIELENS_TEST_FIELDS = {"state": _TEXT, "k_shot": "an int or null", "mae": _NUMBER,
                         "mae_ci95": _NUMBER, "ndcg3": _NUMBER, "ndcg3_ci95": _NUMBER,
                         "users": _INT}


def check_personalisation_record(record: dict, source: str) -> None:
    """The schema of notebook 08's records (see the comment above)."""
    _check_fields(record, {"protocol": _TEXT, "folds": _INT, "test": "a list"}, source)
    fields = (SCHOOLS_TEST_FIELDS if record["name"].startswith("schools_")
              else MOVIELENS_TEST_FIELDS)
    for i, row in enumerate(record["test"]):
        where = f"{source}, test[{i}]"
        _check_fields(row, {f: e for f, e in fields.items() if f != "k_shot"}, where)
        k_shot = row.get("k_shot", "missing")
        if not (_matches(k_shot, _INT) or (k_shot is None and fields is MOVIELENS_TEST_FIELDS)):
            raise RecordError(f"{where}: 'k_shot' must be {fields['k_shot']}, got {k_shot!r}.")


# -- notebook 09: MAML for RL on 2-D point navigation (maml_rl_* records) -------------------------
# Schema: ``test`` is a list of rows ``method`` (str: maml, fomaml, pretrained, oracle, random),
# ``adaptation_steps`` (int), ``average_return``, ``ci95`` (numbers: mean and 95 % CI over goals
# of the average undiscounted return) and ``goals`` (int); plus ``protocol`` (str). Training
# records (``scripts/train_maml_rl.py --method ...``) hold their own policy's rows; the
# comparison (``maml_rl_point_comparison``, a measurement) holds every method's on the same goals.
MAML_RL_PREFIX = "maml_rl_"
MAML_RL_TEST_FIELDS = {"method": _TEXT, "adaptation_steps": _INT, "average_return": _NUMBER,
                       "ci95": _NUMBER, "goals": _INT}


def check_maml_rl_record(record: dict, source: str) -> None:
    """The schema of notebook 09's MAML records (see the comment above)."""
    _check_fields(record, {"protocol": _TEXT, "test": "a list"}, source)
    for i, row in enumerate(record["test"]):
        _check_fields(row, MAML_RL_TEST_FIELDS, f"{source}, test[{i}]")


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


# -- benchmarks/maml_step.py: one MAML meta-step, ours vs PyTorch (notebook 10) -------------------
# Schema of the ``maml_step_benchmark`` measurement: ``rows``, one per timed variant: ``variant``
# (str, e.g. "MAML tf.function", "PyTorch vmap compiled"), ``order`` ("1st" or "2nd"),
# ``framework`` ("tf" or "torch"), ``first_call_seconds``, ``median_step_ms``, ``cpu_ms_per_step``
# (numbers), ``steps`` (int), ``step_ms`` (list), ``vs_reference_wall`` and ``vs_reference_cpu``
# (numbers: the PyTorch loop of the same order / this), ``same_round_median``, ``same_round_min``
# and ``same_round_max`` (the same-round wall ratios, null when not interleaved);
# ``versus_fastest_pytorch``, one row per order (``costs.versus_fastest_pytorch``); and
# ``cross_check``: ``ok`` (bool), ``tolerance`` (number), ``differences`` (list of rows
# ``order``, ``implementation``, ``reference`` (str), ``relative_difference`` (number)).
MAML_STEP_BENCHMARK = "maml_step_benchmark"
MAML_STEP_BENCHMARK_ROWS = {
    "rows": {"variant": _TEXT, "order": _TEXT, "framework": _TEXT, "first_call_seconds": _NUMBER,
             "median_step_ms": _NUMBER, "cpu_ms_per_step": _NUMBER, "steps": _INT,
             "step_ms": "a list", "vs_reference_wall": _NUMBER, "vs_reference_cpu": _NUMBER,
             "same_round_median": "a number or null", "same_round_min": "a number or null",
             "same_round_max": "a number or null"},
    "versus_fastest_pytorch": {"order": _TEXT, "fastest_wall": _TEXT, "fastest_cpu": _TEXT,
                               "wall_ratio": _NUMBER, "cpu_ratio": _NUMBER,
                               "same_round_wall_ratio": "a number or null", "goal": _NUMBER,
                               "met": "a bool"}}
MAML_STEP_CROSS_CHECK_FIELDS = {"ok": "a bool", "tolerance": _NUMBER, "differences": "a list"}
MAML_STEP_DIFFERENCE_FIELDS = {"order": _TEXT, "implementation": _TEXT, "reference": _TEXT,
                               "relative_difference": _NUMBER}


def check_maml_step_benchmark(record: dict, source: str) -> None:
    """The schema of the ``maml_step_benchmark`` measurement (see the comment above)."""
    _check_rows(record, MAML_STEP_BENCHMARK_ROWS, source)
    _check_fields(record, {"cross_check": "a dict"}, source)
    _check_fields(record["cross_check"], MAML_STEP_CROSS_CHECK_FIELDS, f"{source}, cross_check")
    for i, row in enumerate(record["cross_check"]["differences"]):
        _check_fields(row, MAML_STEP_DIFFERENCE_FIELDS, f"{source}, cross_check.differences[{i}]")
