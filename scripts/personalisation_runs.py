"""The folds behind notebook 08's tables (used by ``scripts/train_personalisation.py``).

Part A, Exam (:data:`SCHOOLS`): 5-fold cross-validation over the 65 schools (each school held
out once, :func:`metalearn_helpers.school_models.school_folds`, seed 0). In each fold every method
is trained on the 52 training schools and scored on the held-out schools with at least
``max(K_SHOTS) + 5`` students (the same schools for every K): for each school and K, 10 random
support sets of K students (draw seeds 0-9), the rest of the school as the query set; a school's
query MSE is averaged over its draws, and the 95 % CI is over held-out schools. MAML and Reptile
are meta-trained once per fold on tasks of ``train_k_shot`` support and ``train_n_query`` query
students and tested at every K.

Part B, MovieLens (:data:`MOVIELENS`): 5-fold cross-validation over the 671 users (each user new
once); per fold MeLU's states (:func:`metalearn_helpers.movielens.melu_split` with that fold's new
users), meta-training on the existing users' existing items (``warm_state``), test on the new users
in ``user_cold_state`` (existing items) and ``user_and_item_cold_state`` (new items): support =
all of a user's non-query ratings, or the first K in {5, 10, 20} (then only users with K + 10
ratings, the same users for every K); 10 query ratings; MAE and nDCG@3 per user, 95 % CI over
users.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "runs" / "personalisation"
N_FOLDS, FOLD_SEED = 5, 0

SCHOOLS = dict(
    k_shots=(2, 5, 10, 20), n_draws=10, train_k_shot=10, train_n_query=10,
    network="1-40-40-1 ReLU MLP on standLRT (MAML's sinusoid regressor)",
    pooled=dict(epochs=60, batch_size=256, learning_rate=1e-3),
    multitask=dict(hidden=(40, 4), head_decay=0.1, steps=3000, learning_rate=3e-3),
    maml=dict(inner_lr=0.1, inner_steps=1, meta_batch_size=10, meta_lr=1e-3, n_steps=2000),
    reptile=dict(inner_lr=0.001, inner_steps=5, inner_batch_size=10, meta_lr=1.0,
                 meta_batch_size=5, eval_inner_steps=5, n_steps=2000),
)
MOVIELENS = dict(
    k_shots=(5, 10, 20), states=("user_cold_state", "user_and_item_cold_state"),
    melu=dict(embedding_dim=32, hidden=(64, 64), inner_lr=0.01, inner_steps=5,
              meta_batch_size=32, meta_lr=5e-4, train_k_shot=10, n_steps=1500),
    pretrained=dict(epochs=5, batch_size=256, learning_rate=1e-3),
    mf=dict(rank=10, l2=5.0, n_iterations=15),
)
PAPERS = {
    "pooled": "one network for all students (no per-school adaptation)",
    "per_school": "least-squares line on the new school's K students alone",
    "multitask": "multi-task learning, Caruana 1997 (Machine Learning 28:41-75)",
    "maml": "MAML, Finn et al. 2017 (arXiv 1703.03400)",
    "reptile": "Reptile, Nichol et al. 2018 (arXiv 1803.02999)",
    "multilevel": "multilevel model, Goldstein 2011 (Multilevel Statistical Models); "
                  "empirical Bayes for a new school",
    "multilevel_intercept": "multilevel model (random intercept only), Goldstein 2011",
    "melu": "MeLU, Lee et al. 2019 (arXiv 1908.00413)",
    "finetuned": "MeLU's network pre-trained without meta-learning, then the same local update",
    "mf": "biased matrix factorisation, Koren et al. 2009 (IEEE Computer 42(8)), new user "
          "folded in",
    "global_mean": "mean of the training ratings", "item_mean": "item's mean training rating",
    "user_mean": "mean of the user's support ratings",
}


def _save(path: Path, result: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.with_suffix(".tmp").write_text(json.dumps(result))
    path.with_suffix(".tmp").replace(path)


def _meta_train(learner, tasks, setting, run_dir, seed):
    from metalearn_helpers.training import meta_train

    start = time.time()
    history = meta_train(learner, tasks, n_steps=setting["n_steps"],
                         meta_batch_size=setting["meta_batch_size"], seed=seed,
                         run_dir=run_dir, progress=False, log_every=50)
    return history, time.time() - start


# -- part A ---------------------------------------------------------------------------------------
def school_learners(fold, data, n_steps):
    """The meta-learners of one fold, trained (resumably) in ``runs/schools_<alg>_fold<f>``."""
    import keras

    from metalearn_helpers import schools
    from metalearn_helpers.maml import MAML
    from metalearn_helpers.models import sinusoid_mlp
    from metalearn_helpers.reptile import Reptile

    s = SCHOOLS
    tasks = schools.SchoolTasks(data, fold.train, k_shot=s["train_k_shot"],
                                n_query=s["train_n_query"])
    learners, seconds = {}, {}
    for name in ("maml", "reptile"):
        setting = {**s[name], "n_steps": n_steps or s[name]["n_steps"]}
        keras.utils.set_random_seed(fold.index)
        if name == "maml":
            learner = MAML(sinusoid_mlp(), inner_lr=setting["inner_lr"],
                           inner_steps=setting["inner_steps"], task_type="regression",
                           meta_optimizer=keras.optimizers.Adam(setting["meta_lr"]))
        else:
            learner = Reptile(sinusoid_mlp(), inner_lr=setting["inner_lr"],
                              inner_steps=setting["inner_steps"],
                              inner_batch_size=setting["inner_batch_size"],
                              meta_lr=setting["meta_lr"], annealing_steps=setting["n_steps"],
                              eval_inner_steps=setting["eval_inner_steps"],
                              task_type="regression")
        run_dir = ROOT / "runs" / f"schools_{name}_fold{fold.index}"
        history, seconds[name] = _meta_train(learner, tasks, setting, run_dir, fold.index)
        learners[name] = (learner, history, setting["n_steps"])
    return learners, seconds


def run_school_fold(index: int, n_steps=None, command: str = "") -> None:
    """Train every part-A method on fold ``index`` and save per-school query MSEs."""
    import types

    from metalearn_helpers import multilevel, schools
    from metalearn_helpers import school_models as sm
    from metalearn_helpers.models import sinusoid_mlp

    s = SCHOOLS
    data = schools.load_exam()
    split = sm.school_folds(data, N_FOLDS, FOLD_SEED)[index]
    fold = types.SimpleNamespace(index=index, train=split.train, test=split.test)
    x, y, school_index = sm.students(data, split.train)
    start = time.time()
    mt = s["multitask"]
    predictors = {
        "pooled": sm.pooled_predictor(sm.fit_regressor(sinusoid_mlp(), x, y,
                                                       epochs=s["pooled"]["epochs"], seed=index)),
        "per_school": sm.per_school_predictor(),
        "multitask": sm.MultiTaskNet(len(split.train), hidden=mt["hidden"],
                                     head_decay=mt["head_decay"], seed=index).fit(
            x, y, school_index, steps=mt["steps"], learning_rate=mt["learning_rate"]).predictor(),
        "multilevel": sm.multilevel_predictor(multilevel.fit_multilevel(
            data, random_slope=True, schools=split.train)),
        "multilevel_intercept": sm.multilevel_predictor(multilevel.fit_multilevel(
            data, schools=split.train)),
    }
    seconds = {"other methods": time.time() - start}
    learners, meta_seconds = school_learners(fold, data, n_steps)
    seconds.update(meta_seconds)
    for name, (learner, _, _) in learners.items():
        predictors[name] = sm.adapted_predictor(learner)
    test = schools.eligible_schools(data, max(s["k_shots"]), schools.MIN_QUERY, split.test)
    scores = {k: sm.score_methods(predictors, data, test, k, s["n_draws"]) for k in s["k_shots"]}
    from metalearn_helpers import records

    for name, (learner, history, planned) in learners.items():
        records.save_weights(learner, RUNS / f"schools_{name}_fold{index}.npz")
        shutil.copy(ROOT / "runs" / f"schools_{name}_fold{index}" / "history.json",
                    RUNS / f"schools_{name}_fold{index}.history.json")
    _save(RUNS / f"schools_fold{index}.json", {
        "fold": index, "test_schools": test.tolist(), "train_schools": split.train.tolist(),
        "seconds": seconds, "command": command,
        "steps": {n: int(h.step) for n, (_, h, _) in learners.items()},
        "planned_steps": {n: p for n, (_, _, p) in learners.items()},
        "mse": {str(k): {n: v.tolist() for n, v in by.items()} for k, by in scores.items()}})
    for k, by in scores.items():
        print(f"fold {index}, K = {k}: " + ", ".join(f"{n} {np.mean(v):.3f}"
                                                     for n, v in by.items()), flush=True)


# -- part B ---------------------------------------------------------------------------------------
def movielens_predictors(index, data, split, features, n_steps):
    """Every part-B method of one fold, trained: ``({name: predict}, seconds, melu, steps)``."""
    import keras

    from metalearn_helpers import melu
    from metalearn_helpers.school_models import fit_regressor

    m, warm = MOVIELENS["melu"], split.states["warm_state"]
    start = time.time()
    predictors = {name.replace(" ", "_"): p for name, p in melu.mean_predictors(warm).items()}
    predictors["mf"] = melu.MatrixFactorisation(**MOVIELENS["mf"], seed=index).fit(warm).predictor()
    x = np.stack([features[int(movie)] for movie in warm["movieId"]])
    network = fit_regressor(melu.melu_network(m["embedding_dim"], m["hidden"]), x,
                            warm["rating"].to_numpy(np.float32)[:, None],
                            epochs=MOVIELENS["pretrained"]["epochs"], seed=index)
    pretrained = melu.MeLU(network, inner_lr=m["inner_lr"], inner_steps=m["inner_steps"])
    predictors["finetuned"] = lambda e: pretrained.predict(e.support_x, e.support_y, e.query_x)
    seconds = {"baselines": time.time() - start}
    keras.utils.set_random_seed(index)
    learner = melu.MeLU(melu.melu_network(m["embedding_dim"], m["hidden"]), inner_lr=m["inner_lr"],
                        inner_steps=m["inner_steps"],
                        meta_optimizer=keras.optimizers.Adam(m["meta_lr"]))
    setting = {**m, "n_steps": n_steps or m["n_steps"]}
    tasks = melu.UserTasks(warm, features, k_shot=m["train_k_shot"])
    history, seconds["melu"] = _meta_train(learner, tasks, setting,
                                           ROOT / "runs" / f"movielens_melu_fold{index}", index)
    predictors["melu"] = lambda e: learner.predict(e.support_x, e.support_y, e.query_x)
    return predictors, seconds, (learner, pretrained, history, setting["n_steps"])


def run_movielens_fold(index: int, n_steps=None, command: str = "") -> None:
    """Train every part-B method on fold ``index`` and save per-user MAE and nDCG@3."""
    from metalearn_helpers import movielens as ml
    from metalearn_helpers import records

    data = ml.load_movielens()
    features = ml.item_features(data)
    split = ml.melu_split(data, new_users=ml.user_folds(data, N_FOLDS, FOLD_SEED)[index])
    predictors, seconds, (learner, pretrained, history, planned) = movielens_predictors(
        index, data, split, features, n_steps)
    results = {}
    for state in MOVIELENS["states"]:
        frame = split.states[state]
        for k_shot in (None,) + MOVIELENS["k_shots"]:
            users = ml.eligible_users(frame, None if k_shot is None else max(MOVIELENS["k_shots"]))
            for name, predict in predictors.items():
                score = ml.evaluate_users(predict, frame, features, users, k_shot=k_shot)
                results.setdefault(name, []).append({
                    "state": state, "k_shot": k_shot, "users": users.tolist(),
                    "mae": score["mae"].values.tolist(), "ndcg@3": score["ndcg@3"].values.tolist()})
            print(f"fold {index}, {state}, K = {k_shot or 'all'}: " + ", ".join(
                f"{n} {np.mean(r[-1]['mae']):.3f}" for n, r in results.items()), flush=True)
    records.save_weights(learner, RUNS / f"movielens_melu_fold{index}.npz")
    records.save_weights(pretrained, RUNS / f"movielens_finetuned_fold{index}.npz")
    shutil.copy(ROOT / "runs" / f"movielens_melu_fold{index}" / "history.json",
                RUNS / f"movielens_melu_fold{index}.history.json")
    _save(RUNS / f"movielens_fold{index}.json", {
        "fold": index, "seconds": seconds, "command": command, "steps": int(history.step),
        "planned_steps": planned, "results": results,
        "counts": {s: list(c) for s, c in split.counts().items()}})


# -- export ---------------------------------------------------------------------------------------
def _record(name, algorithm, hyperparameters, folds, steps, planned, seconds, protocol, test,
            command, **extra) -> dict:
    return {"name": name, "algorithm": algorithm, "paper": PAPERS[algorithm],
            "hyperparameters": hyperparameters, "steps": steps, "planned_steps": planned,
            "finished": steps >= planned, "seed": FOLD_SEED, "train_seconds": seconds,
            "seconds_per_step": seconds / steps if steps else 0.0,
            "command": " && ".join(sorted({f["command"] for f in folds})),
            "export_command": command,
            "protocol": protocol, "folds": len(folds), "test": test, **extra}


def multilevel_anchor(method: str) -> dict:
    """For the multilevel records: the maximum-likelihood fit on all 4,059 students next to
    the MLwiN User's Guide's published estimates."""
    from metalearn_helpers import multilevel, schools

    if not method.startswith("multilevel"):
        return {}
    model = "random_intercept" if method.endswith("intercept") else "random_slope"
    fit = multilevel.fit_multilevel(schools.load_exam(), random_slope=model == "random_slope")
    return {"full_data_estimates": fit.summary(),
            "published_estimates": multilevel.PUBLISHED_MLWIN[model],
            "published_source": "Rasbash, Steele, Browne & Goldstein (2012), A User's Guide to "
                                "MLwiN v2.26, ch. 4 (sections 4.1 and 4.4), IGLS"}


def export_schools(command: str) -> None:
    from metalearn_helpers import records
    from metalearn_helpers.evaluation import mean_confidence_interval

    folds = [json.loads(p.read_text()) for p in sorted(RUNS.glob("schools_fold*.json"))]
    if not folds:
        return
    protocol = __doc__.split("\n\n")[1].replace("\n", " ")
    order = [s for f in folds for s in f["test_schools"]]
    for method in folds[0]["mse"][str(SCHOOLS["k_shots"][0])]:
        test = []
        for k in SCHOOLS["k_shots"]:
            values = [v for f in folds for v in f["mse"][str(k)][method]]
            score = mean_confidence_interval(values)
            test.append({"k_shot": k, "mse": float(score.mean), "ci95": float(score.ci95),
                         "schools": score.n, "values": values})
        meta = method in ("maml", "reptile")
        steps = sum(f["steps"][method] for f in folds) if meta else 0
        planned = sum(f["planned_steps"][method] for f in folds) if meta else 0
        seconds = sum(f["seconds"].get(method, f["seconds"]["other methods"]) for f in folds)
        settings = {k: v for k, v in SCHOOLS.items() if not isinstance(v, dict)}
        hyper = {**settings, **SCHOOLS.get(method.split("_")[0] if method != "per_school"
                                           else method, {})}
        records.write_record(records.WEIGHTS_DIR / f"schools_{method}.json", _record(
            f"schools_{method}", method, hyper, folds, steps, planned, seconds, protocol, test,
            command, schools_order=order, **multilevel_anchor(method),
            **({"weights": f"weights/schools_{method}.npz (fold 0)"} if meta else {})))
        if meta:
            shutil.copy(RUNS / f"schools_{method}_fold0.npz",
                        records.WEIGHTS_DIR / f"schools_{method}.npz")
            shutil.copy(RUNS / f"schools_{method}_fold0.history.json",
                        records.WEIGHTS_DIR / f"schools_{method}.history.json")
        print(f"schools_{method}: " + ", ".join(f"K={t['k_shot']} {t['mse']:.3f} ± {t['ci95']:.3f}"
                                               for t in test))


def export_movielens(command: str) -> None:
    from metalearn_helpers import records
    from metalearn_helpers.evaluation import mean_confidence_interval

    folds = [json.loads(p.read_text()) for p in sorted(RUNS.glob("movielens_fold*.json"))]
    if not folds:
        return
    protocol = __doc__.split("\n\n")[2].replace("\n", " ")
    for method, settings in folds[0]["results"].items():
        test = []
        for i, setting in enumerate(settings):
            mae = mean_confidence_interval(
                [v for f in folds for v in f["results"][method][i]["mae"]])
            ndcg = mean_confidence_interval(
                [v for f in folds for v in f["results"][method][i]["ndcg@3"]])
            test.append({"state": setting["state"], "k_shot": setting["k_shot"],
                         "mae": float(mae.mean), "mae_ci95": float(mae.ci95),
                         "ndcg3": float(ndcg.mean), "ndcg3_ci95": float(ndcg.ci95),
                         "users": mae.n})
        steps = sum(f["steps"] for f in folds) if method == "melu" else 0
        planned = sum(f["planned_steps"] for f in folds) if method == "melu" else 0
        seconds = sum(f["seconds"]["melu" if method == "melu" else "baselines"] for f in folds)
        hyper = MOVIELENS.get({"finetuned": "pretrained"}.get(method, method), {})
        if method == "finetuned":
            hyper = {**hyper, **{k: MOVIELENS["melu"][k] for k in ("inner_lr", "inner_steps")}}
        records.write_record(records.WEIGHTS_DIR / f"movielens_{method}.json", _record(
            f"movielens_{method}", method, hyper, folds, steps, planned, seconds, protocol, test,
            command, counts_fold0=folds[0]["counts"]))
        if method in ("melu", "finetuned"):
            shutil.copy(RUNS / f"movielens_{method}_fold0.npz",
                        records.WEIGHTS_DIR / f"movielens_{method}.npz")
        if method == "melu":
            shutil.copy(RUNS / "movielens_melu_fold0.history.json",
                        records.WEIGHTS_DIR / "movielens_melu.history.json")
        print(f"movielens_{method}: " + ", ".join(
            f"{t['state'][:9]} K={t['k_shot']} MAE {t['mae']:.3f}" for t in test))


def export(command: str) -> None:
    export_schools(command)
    export_movielens(command)
