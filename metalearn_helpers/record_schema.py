"""The schema of run records (:mod:`metalearn_helpers.records`), checked by :func:`check_record`
on every load and write. A record that does not match raises :class:`RecordError` naming the
file, the field and what is expected.

- every record: ``name`` (str), ``algorithm`` (str), ``paper`` (str, the citation),
  ``hyperparameters`` (dict), ``steps`` and ``planned_steps`` (int, meta-steps trained and
  planned), ``finished`` (bool), ``seed`` (int), ``train_seconds`` and ``seconds_per_step``
  (numbers), ``command`` (str, what produced it), ``date`` (str, ISO 8601), ``machine`` (dict, see
  :func:`metalearn_helpers.records.machine_description`), ``git_commit`` (str or null), ``test`` (the main test).
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

import numbers


class RecordError(ValueError):
    """A run record that does not follow the schema of :mod:`metalearn_helpers.record_schema`."""


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
                              f"{', '.join(fields)} (see metalearn_helpers.record_schema).")
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
        if record["name"] == DISTRIBUTED_BENCHMARK:
            _check_rows(record, DISTRIBUTED_BENCHMARK_ROWS, source)
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


# -- benchmarks/distributed.py: one device vs two replicas (notebook 10) --------------------------
# Schema of the ``distributed_benchmark`` measurement: ``rows``, one per variant ("one device",
# "mirrored, 1 replica", "mirrored, 2 replicas"): ``seconds_per_step``, ``cpu_seconds_per_step``
# (medians), ``vs_one_device`` (steps/s against one device), ``first_call_seconds`` (numbers) and
# ``steps`` (int); plus ``load_average`` (``start``, ``end``).
DISTRIBUTED_BENCHMARK = "distributed_benchmark"
DISTRIBUTED_BENCHMARK_ROWS = {
    "rows": {"variant": _TEXT, "seconds_per_step": _NUMBER, "cpu_seconds_per_step": _NUMBER,
             "vs_one_device": _NUMBER, "first_call_seconds": _NUMBER, "steps": _INT}}
