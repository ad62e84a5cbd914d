"""The results tables of the applications (notebooks 07 to 09), as rows from their run records.

Each function takes records loaded by :func:`metalearn_helpers.records.load_records` (whose
schema checks the ``fashion_mnist_``, ``hospitals_``, ``schools_`` and ``movielens_`` records;
the ``rl2_bandits_`` records of notebook 09 are plain run records) and returns rows of strings for
:func:`metalearn_helpers.records.markdown_table`.
"""

from __future__ import annotations

import numpy as np

from .evaluation import mean_confidence_interval
from .papers import MAML_RL_RELEASED_RETURNS, RL2_BANDIT_RESULTS
from .records import QUERIES_PER_CLASS, maml_rl_rows, versus_paper

def _omniglot_test(records: list[dict], run: str | None, method: str, k_shot: int):
    """The 5-way ``k_shot``-shot Omniglot test (15 queries) of committed run ``run``, or None."""
    adaptation = method[method.find("(") + 1:-1] if "(" in method else None
    for r in (r for r in records if r["name"] == run):
        for t in r["tests"]:
            if (t["n_way"], t["k_shot"], t["n_query"], t.get("adaptation")) == (
                    5, k_shot, QUERIES_PER_CLASS, adaptation):
                return t
    return None


def fashion_mnist_scores(records: list[dict], shots=(1, 5)) -> dict:
    """``{(method, trained_on, tested_on): {k_shot: (test, record)}}`` from the Fashion-MNIST
    records (``tested_on="fashion_mnist"``) and, for learners transferred from Omniglot, their
    runs' own Omniglot test (``tested_on="omniglot"``). A learner trained on Fashion-MNIST for
    one shot is scored at its own shot; another shot's learner stands in only where that one is
    missing."""
    scores = {}
    for r in (r for r in records if r["name"].startswith("fashion_mnist_")):
        for t in r["tests"]:
            if t["k_shot"] not in shots:
                continue
            row = scores.setdefault((t["method"], t["trained_on"], "fashion_mnist"), {})
            if t["trained_on"] != "fashion_mnist" or t["k_shot"] == r["k_shot"] or (
                    t["k_shot"] not in row):
                row[t["k_shot"]] = (t, r)
            omniglot = _omniglot_test(records, t.get("run"), t["method"], t["k_shot"])
            if omniglot is not None:
                scores.setdefault((t["method"], "omniglot", "omniglot"), {})[t["k_shot"]] = (
                    omniglot, next(o for o in records if o["name"] == t["run"]))
    return scores


def fashion_mnist_rows(records: list[dict], shots=(1, 5)) -> list[dict]:
    """One row per method, training domain and test domain: 5-way accuracy at each of
    ``shots`` (the 1-shot test of the learner trained for 1 shot, the 5-shot test of the one
    trained for 5) and the steps trained (see :func:`fashion_mnist_scores`)."""
    rows, scores = [], fashion_mnist_scores(records, shots)
    for (method, trained_on, tested_on), by_shot in sorted(scores.items()):
        row = {"method": method, "trained on": trained_on.replace("_", "-"),
               "tested on": tested_on.replace("_", "-")}
        for k in shots:
            t, r = by_shot.get(k, (None, None))
            cell = "–" if t is None else f"{t['accuracy']:.1f} ± {t['ci95']:.1f} %"
            if r is not None and trained_on == "fashion_mnist" and r["k_shot"] != k and (
                    "batch_size" not in r["hyperparameters"]):  # the baseline has one model
                cell += f" ({r['k_shot']}-shot learner)"
            row[f"5-way {k}-shot"] = cell
        trained = scores.get((method, "omniglot", "omniglot"), by_shot) if (
            trained_on == "omniglot") else by_shot  # the Omniglot runs behind a transfer
        steps = {f"{r['steps']:,}" + ("" if r["finished"] else " (unfinished)")
                 for _, r in trained.values() if r["steps"]}
        row["training steps"] = " / ".join(sorted(steps)) or "–"
        rows.append(row)
    return rows


def hospital_rows(records: list[dict], metric: str = "accuracy") -> list[dict]:
    """One row per held-out hospital and method: ``metric`` (``"accuracy"``, %, or ``"auc"``)
    at every K, mean ± 95 % CI over draws, and Detrano et al.'s protocol as an anchor row."""
    if metric not in ("accuracy", "auc"):
        raise ValueError(f"metric must be 'accuracy' or 'auc', got {metric!r}.")
    rows = []
    for r in sorted((r for r in records if r["name"].startswith("hospitals_")),
                    key=lambda r: r["hospital"]):
        k_shots = sorted({t["k_shot"] for t in r["tests"]})
        ci = "ci95" if metric == "accuracy" else "auc_ci95"
        fmt = "{:.1f} ± {:.1f}" if metric == "accuracy" else "{:.3f} ± {:.3f}"
        methods = list(dict.fromkeys(t["method"] for t in r["tests"]))
        for method in methods:
            by_k = {t["k_shot"]: t for t in r["tests"] if t["method"] == method}
            rows.append({"new hospital": r["hospital"], "method": method,
                         **{f"K={k}": fmt.format(by_k[k][metric], by_k[k][ci]) if k in by_k
                            else "" for k in k_shots}})
        anchor = r.get("anchor")
        if anchor:
            value = (f"{anchor['accuracy']:.1f} ± {anchor['ci95']:.1f} (published "
                     f"{anchor['published_accuracy']:.0f})" if metric == "accuracy"
                     else f"{anchor['auc']:.3f}")
            rows.append({"new hospital": r["hospital"],
                         "method": "anchor: Detrano protocol (fit on Cleveland)",
                         **{f"K={k}": value if k == 0 else "" for k in k_shots}})
    return rows


def schools_rows(records: list[dict], k_shots=(2, 5, 10, 20)) -> list[dict]:
    """One row per ``schools_*`` record: query MSE (mean ± 95 % CI over held-out schools) at
    each K."""
    rows = []
    for r in (r for r in records if r["name"].startswith("schools_")):
        by_k = {t["k_shot"]: t for t in r["test"]}
        rows.append({"method": r["algorithm"],
                     **{f"K = {k}": f"{by_k[k]['mse']:.3f} ± {by_k[k]['ci95']:.3f}"
                        if k in by_k else "" for k in k_shots}})
    return rows


def movielens_rows(records: list[dict], state: str, metric: str = "mae",
                   k_shots=(None, 5, 10, 20)) -> list[dict]:
    """One row per ``movielens_*`` record: ``metric`` (``"mae"`` or ``"ndcg3"``, mean ± 95 % CI
    over new users) in ``state`` for each support size (None: all the user's other ratings)."""
    rows = []
    for r in (r for r in records if r["name"].startswith("movielens_")):
        by_k = {t["k_shot"]: t for t in r["test"] if t["state"] == state}
        rows.append({"method": r["algorithm"], **{
            ("support: all" if k is None else f"K = {k}"):
            f"{by_k[k][metric]:.3f} ± {by_k[k][metric + '_ci95']:.3f}" if k in by_k else ""
            for k in k_shots}})
    return rows


def multilevel_rows(record: dict) -> list[dict]:
    """The multilevel anchor of a ``schools_multilevel*`` record: each estimate of the fit on all
    students next to the MLwiN User's Guide's published value."""
    ours, published = record["full_data_estimates"], record["published_estimates"]
    return [{"estimate": name, "ours (statsmodels MixedLM, ML)": f"{ours[name]:.3f}",
             "published (MLwiN, IGLS)": f"{value:.3f}"} for name, value in published.items()]


def schools_paired_rows(records: list[dict], reference: str = "multilevel",
                        k_shots=(2, 5, 10, 20)) -> list[dict]:
    """Per ``schools_*`` record: its query MSE minus the ``reference`` method's on the same
    schools and support draws (mean ± 95 % CI of the per-school differences), at each K. Paired
    differences remove the spread between schools that dominates the plain CIs."""
    by_name = {r["algorithm"]: r for r in records if r["name"].startswith("schools_")}
    if reference not in by_name:
        raise ValueError(f"no schools_ record of {reference!r}; have {sorted(by_name)}.")
    base = {t["k_shot"]: np.asarray(t["values"]) for t in by_name[reference]["test"]}
    rows = []
    for name, record in by_name.items():
        if name == reference:
            continue
        by_k = {t["k_shot"]: np.asarray(t["values"]) for t in record["test"]}
        cells = {}
        for k in k_shots:
            score = mean_confidence_interval(by_k[k] - base[k]) if k in by_k else None
            cells[f"K = {k}"] = "" if score is None else f"{score.mean:+.3f} ± {score.ci95:.3f}"
        rows.append({"method": name, **cells})
    return rows


# -- notebook 09: RL² on Bernoulli bandits (Duan et al. 2016, arXiv 1611.02779, Table 1) ----------
RL2_METHOD_LABELS = {"rl2": "RL² (sampling)", "rl2_greedy": "RL² (greedy)", "random": "random",
                     "ucb1": "UCB1 (c = 1)", "ucb1_tuned": "UCB1 (tuned c = {c})",
                     "thompson": "Thompson sampling", "bayes_optimal": "Bayes-optimal (exact)",
                     "gittins": "Gittins index (finite horizon)"}
# Which of our rows the paper's Table 1 numbers belong to: its UCB1 is tuned (its appendix), and it
# reports the RL² policy as trained, sampling its actions.
RL2_PAPER_METHODS = {"rl2": "rl2", "random": "random", "ucb1_tuned": "ucb1",
                     "thompson": "thompson", "gittins": "gittins"}


def current_rl2_records(records: list[dict]) -> list[dict]:
    """The ``rl2_bandits_*`` records of the current RL² policies, one per ``(k_arms, n_pulls)``,
    sorted by them: a run that a later run continued (its ``initialized_from``, a second phase of
    ``scripts/train_rl2.py --init-from``) gives way to that run. Two current records for one
    setting raise ValueError."""
    runs = [r for r in records if r["name"].startswith("rl2_bandits_")]
    continued = {r["initialized_from"]["name"] for r in runs if "initialized_from" in r}
    current = {}
    for r in (r for r in runs if r["name"] not in continued):
        setting = (r["k_arms"], r["n_pulls"])
        if setting in current:
            raise ValueError(f"two current RL² runs for k = {setting[0]}, n = {setting[1]}: "
                             f"{current[setting]['name']} and {r['name']}; continue one from "
                             f"the other (--init-from) or keep only one.")
        current[setting] = r
    return [current[setting] for setting in sorted(current)]


def rl2_training_phases(record: dict, records: list[dict]) -> list[dict]:
    """The records of the runs that made ``record``'s policy, first phase first: each run
    started ``--init-from`` another (its ``initialized_from``) follows it."""
    by_name = {r["name"]: r for r in records}
    phases = [record]
    while "initialized_from" in phases[0]:
        name = phases[0]["initialized_from"]["name"]
        if name not in by_name:
            raise ValueError(f"{phases[0]['name']} continues {name}, whose record is missing.")
        phases.insert(0, by_name[name])
    return phases


def _rl2_iterations(record: dict, records: list[dict]) -> str:
    """``", 6,000 iterations"``; later phases add their own: ``", 6,000 + 1,200 iterations"``."""
    steps = " + ".join(f"{r['steps']:,}" for r in rl2_training_phases(record, records))
    return f", {steps} iterations" + ("" if record["finished"] else
                                     f" of {record['planned_steps']:,}")


def rl2_bandit_rows(records: list[dict]) -> list[dict]:
    """Duan et al.'s Table 1 next to ours: one row per method of every current ``rl2_bandits_*``
    record (:func:`current_rl2_records`; RL² and the baselines on the same 1,000 test bandits,
    common random numbers): total reward mean ± 95 % CI, RL² minus the method on the same bandits
    (paired), the paper's number and the course's target verdict
    (:func:`metalearn_helpers.records.versus_paper`). The Gittins index row is ours
    (:func:`metalearn_helpers.bandits.gittins_arms`); a record scored before it was a baseline
    shows the paper's number alone."""
    rows = []
    for r in current_rl2_records(records):
        tests, paper = r["tests"], RL2_BANDIT_RESULTS.get((r["k_arms"], r["n_pulls"]), {})
        scores = {**tests["scores"]}
        if "gittins" in paper:
            scores.setdefault("gittins", None)
        for method, score in scores.items():
            label = RL2_METHOD_LABELS.get(method, method).format(c=tests["ucb1_exploration"])
            if method.startswith("rl2"):
                label += _rl2_iterations(r, records)
            published = paper.get(RL2_PAPER_METHODS.get(method))
            paired = tests["rl2_minus"].get(method)
            rows.append({
                "setting": f"k = {r['k_arms']}, n = {r['n_pulls']}", "method": label,
                "ours (total reward)": "–" if score is None else
                f"{score['total_reward']:.2f} ± {score['ci95']:.2f}",
                "RL² − method (paired)": "–" if paired is None else
                f"{paired['total_reward']:+.2f} ± {paired['ci95']:.2f}",
                "paper (Table 1)": "–" if published is None else f"{published}",
                "vs paper": "–" if published is None or score is None else
                versus_paper(score["total_reward"], score["ci95"], published, None)})
    return rows


def rl2_large_test_rows(records: list[dict]) -> list[dict]:
    """RL² against the best strategy we compute (exact Bayes-optimal up to 20 pulls, else the
    Gittins index) on the 10,000 further bandits of every current ``rl2_bandits_*`` record that
    holds them (``tests.large_test``, ``scripts/train_rl2.py``): their paired difference says
    how far RL² is from that ceiling in expectation."""
    rows = []
    for r in current_rl2_records(records):
        large = r["tests"].get("large_test")
        if large is None:
            continue
        (best, gap), = large["rl2_minus"].items()
        rl2, reference = large["scores"]["rl2"], large["scores"][best]
        rows.append({"setting": f"k = {r['k_arms']}, n = {r['n_pulls']}",
                     "bandits": f"{rl2['tasks']:,}",
                     "RL² (sampling)": f"{rl2['total_reward']:.2f} ± {rl2['ci95']:.2f}",
                     "best computed strategy": f"{RL2_METHOD_LABELS[best]}: "
                     f"{reference['total_reward']:.2f} ± {reference['ci95']:.2f}",
                     "RL² − it (paired)": f"{gap['total_reward']:+.2f} ± {gap['ci95']:.2f}"})
    return rows


def maml_rl_released_rows() -> list[dict]:
    """The released result files behind Finn et al.'s Figure 4
    (:data:`~metalearn_helpers.papers.MAML_RL_RELEASED_RETURNS`) as rows of the ``maml_rl_``
    records' ``test`` (method labelled "... (released)"), for :func:`maml_rl_rows`."""
    return [{"method": f"{method} (released)", "adaptation_steps": k, "average_return": mean,
             "ci95": ci, "goals": 40}
            for method, stages in MAML_RL_RELEASED_RETURNS.items()
            for k, (mean, ci) in enumerate(stages)]


def maml_rl_comparison_rows(records: list[dict]) -> list[dict]:
    """Return after 0-3 adaptation steps on 2-D navigation: every policy of the committed
    comparison (``maml_rl_point_comparison``, the same 100 held-out goals), then the released
    results (40 goals, the same test protocol), one table row per method."""
    comparison = next(r for r in records if r["name"] == "maml_rl_point_comparison")
    return maml_rl_rows(comparison["test"] + maml_rl_released_rows())
