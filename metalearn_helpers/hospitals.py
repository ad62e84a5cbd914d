"""Hospitals as tasks: adapt a heart-disease classifier to a new hospital from K labelled local
patients, with MAML (Finn et al. 2017, arXiv 1703.03400) against the usual alternatives.

Defined in notebook ``07_applications_few_shot`` (Part B); ``scripts/train_hospitals.py`` runs
the leave-one-hospital-out protocol and exports one record per held-out hospital.

Protocol (:func:`metalearn_helpers.heart_disease.hospital_task`): one hospital is new, the other
three are for training; features are standardised with the training hospitals' statistics; for
each of ``n_draws`` seeds a stratified test set of the new hospital's patients is fixed and K
labelled patients are drawn from the others (nested across K). Every method is scored on the same
draws; accuracy at a 0.5 probability threshold and ROC AUC are averaged over draws with a 95 %
CI (``1.96 s / sqrt(n_draws)``: the spread over draws of labelled and test patients). Methods
(settings in :data:`metalearn_helpers.papers.HOSPITAL_SETTINGS`):

- ``always disease``: predicts disease for everyone (accuracy = prevalence, AUC 0.5);
- ``pooled``: the MLP fitted on all training patients, applied unchanged;
- ``pooled + fine-tuned``: the same MLP after MAML's inner loop (``inner_steps`` gradient steps
  of ``inner_lr`` on the K patients): only the starting point differs from MAML;
- ``local only``: an L2 logistic regression (C = 1) fitted on the K patients alone;
- ``MAML``: the MLP initialisation meta-learned on tasks drawn from the training hospitals
  (:class:`HospitalPatientTasks`), adapted with the same inner loop (K = 0: unadapted).

A teaching example on a 1988 data set, not a diagnostic tool.
"""

from __future__ import annotations

import weakref

import keras
import numpy as np
import tensorflow as tf

from .checks import check_int, check_ints
from .episodes import Episode, Seed, TaskFamily, as_rng
from .evaluation import mean_confidence_interval
from .heart_disease import (ENCODED_FEATURES, K_SHOTS, HeartDisease, fit_standardiser,
                            hospital_task, leave_one_hospital_out)
from .maml import MAML
from .papers import HOSPITAL_SETTINGS
from .training import meta_train

METHODS = ("always disease", "pooled", "pooled + fine-tuned", "local only", "MAML")
PROTOCOL = ("features standardised with the training hospitals' statistics; per draw a "
            "stratified test set of the new hospital (its patients minus 50) and K labelled "
            "patients from the rest, nested across K; accuracy at threshold 0.5 and ROC AUC, "
            "mean and 95 % CI over draws")
_ADAPTED_PROBABILITY = weakref.WeakKeyDictionary()  # one compiled inner loop per learner


def hospital_mlp(hidden=HOSPITAL_SETTINGS["hidden"], name: str = "hospital_mlp") -> keras.Model:
    """A ReLU MLP from the 13 encoded features to 2 logits (no disease, disease)."""
    layers = [keras.Input((len(ENCODED_FEATURES),))]
    layers += [keras.layers.Dense(units, activation="relu") for units in hidden]
    layers.append(keras.layers.Dense(2))
    return keras.Sequential(layers, name=name)


class HospitalPatientTasks(TaskFamily):
    """Meta-training tasks: a hospital chosen uniformly among ``patients`` (``{hospital: (x,
    y)}``, standardised), then ``k_shot`` support and ``n_query`` query patients drawn from it
    without replacement. ``info["hospital"]`` is the hospital's index in ``patients``."""

    def __init__(self, patients: dict, *, k_shot: int, n_query: int):
        check_ints(k_shot=k_shot, n_query=n_query)
        smallest = min(len(y) for _, y in patients.values())
        if k_shot + n_query > smallest:
            raise ValueError(f"k_shot + n_query = {k_shot + n_query}, but a training hospital "
                             f"has only {smallest} patients.")
        self.hospitals = tuple(patients)
        self.patients = [(np.asarray(x, np.float32), np.asarray(y, np.int32))
                         for x, y in patients.values()]
        self.k_shot, self.n_query = k_shot, n_query

    def sample(self, seed: Seed = None) -> Episode:
        rng = as_rng(seed)
        which = int(rng.integers(len(self.patients)))
        x, y = self.patients[which]
        picked = rng.choice(len(y), self.k_shot + self.n_query, replace=False)
        support, query = picked[:self.k_shot], picked[self.k_shot:]
        return Episode(x[support], y[support], x[query], y[query], info={"hospital": which})


def training_patients(data: HeartDisease, hospital: str) -> dict:
    """``{training hospital: (x, y)}`` when ``hospital`` is the new one, standardised with the
    training hospitals' statistics (as :func:`hospital_task` does)."""
    train = leave_one_hospital_out(hospital)
    standardise = fit_standardiser(data, train)
    return {h: (standardise(data.patients(h)[0]), data.patients(h)[1]) for h in train}


def make_maml(model: keras.Model | None = None) -> MAML:
    """MAML with the hospital setting's inner loop around ``model`` (default: a fresh MLP)."""
    s = HOSPITAL_SETTINGS
    return MAML(hospital_mlp() if model is None else model, inner_lr=s["inner_lr"],
                inner_steps=s["inner_steps"], task_type="classification",
                meta_optimizer=keras.optimizers.Adam(s["meta_lr"]))


def train_maml(data: HeartDisease, hospital: str, n_steps: int = HOSPITAL_SETTINGS["n_steps"],
               *, seed: int = 0, run_dir=None, progress: bool = True):
    """Meta-train MAML on tasks of the hospitals other than ``hospital``; ``(maml, history)``."""
    s = HOSPITAL_SETTINGS
    keras.utils.set_random_seed(seed)
    maml = make_maml()
    tasks = HospitalPatientTasks(training_patients(data, hospital), k_shot=s["train_k_shot"],
                                 n_query=s["train_query"])
    history = meta_train(maml, tasks, n_steps=n_steps, meta_batch_size=s["meta_batch_size"],
                         seed=seed, run_dir=run_dir, checkpoint_every=max(1, min(500, n_steps)),
                         progress=progress)
    return maml, history


def fit_pooled(data: HeartDisease, hospital: str, epochs: int = HOSPITAL_SETTINGS["pooled_epochs"],
               seed: int = 0) -> keras.Model:
    """The MLP fitted on all patients of the training hospitals (Adam 1e-3, batches of 32)."""
    check_int("epochs", epochs)
    keras.utils.set_random_seed(seed)
    patients = training_patients(data, hospital)
    x = np.concatenate([x for x, _ in patients.values()])
    y = np.concatenate([y for _, y in patients.values()])
    model = hospital_mlp(name="pooled_mlp")
    model.compile(keras.optimizers.Adam(1e-3),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, batch_size=32, epochs=epochs, verbose=0, shuffle=True)
    return model


def disease_probability(maml: MAML, support_x, support_y, test_x) -> np.ndarray:
    """P(disease) of each test patient after the inner loop on the support patients (none:
    the unadapted model)."""
    test_x = tf.convert_to_tensor(test_x, tf.float32)
    if len(support_y) == 0:
        return tf.nn.softmax(maml.model(test_x))[:, 1].numpy()
    if maml not in _ADAPTED_PROBABILITY:
        def adapted_probability(support_x, support_y, test_x):
            params = maml.adapt(support_x, support_y)
            return tf.nn.softmax(maml.forward(params, test_x))[:, 1]
        _ADAPTED_PROBABILITY[maml] = tf.function(adapted_probability, reduce_retracing=True)
    return _ADAPTED_PROBABILITY[maml](tf.convert_to_tensor(support_x, tf.float32),
                                      tf.convert_to_tensor(support_y, tf.int32), test_x).numpy()


def local_only_probability(support_x, support_y, test_x) -> np.ndarray:
    """P(disease) from an L2 logistic regression (C = 1) on the support patients alone; with
    one class only (or none), the fraction of disease among them (0.5 for none)."""
    from sklearn.linear_model import LogisticRegression

    if len(np.unique(support_y)) < 2:
        rate = float(np.mean(support_y)) if len(support_y) else 0.5
        return np.full(len(test_x), rate)
    return LogisticRegression(C=1.0, max_iter=1000).fit(support_x, support_y).predict_proba(
        test_x)[:, 1]


def accuracy_and_auc(probability, labels, threshold: float = 0.5) -> tuple[float, float]:
    """Accuracy of ``probability > threshold`` and ROC AUC (0.5 for constant scores)."""
    from sklearn.metrics import roc_auc_score

    accuracy = float(np.mean((np.asarray(probability) > threshold) == labels))
    return accuracy, float(roc_auc_score(labels, probability))


def draw_scores(data, hospital, maml, pooled, k_shots=K_SHOTS, n_draws=100, seed=0) -> dict:
    """``{(method, k_shot): array (n_draws, 2)}`` of accuracy and AUC over ``n_draws`` draws of
    the K labelled patients and the test set (see the module docstring)."""
    check_int("n_draws", n_draws)
    fine_tune = make_maml(pooled)
    scores = {}
    for draw in range(n_draws):
        for k_shot in k_shots:
            task = hospital_task(data, hospital, k_shot, seed=seed + draw)
            support = task.support_x, task.support_y, task.test_x
            probabilities = {"MAML": disease_probability(maml, *support)}
            if k_shot == 0:  # the unadapted models: the same for every K of a draw
                probabilities["always disease"] = np.ones(len(task.test_y))
                probabilities["pooled"] = disease_probability(fine_tune, [], [], task.test_x)
            else:
                probabilities["pooled + fine-tuned"] = disease_probability(fine_tune, *support)
                probabilities["local only"] = local_only_probability(*support)
            for method, probability in probabilities.items():
                scores.setdefault((method, k_shot), []).append(
                    accuracy_and_auc(probability, task.test_y))
    return {key: np.array(value) for key, value in scores.items()}


def score_rows(hospital: str, scores: dict, n_test: int) -> list[dict]:
    """Record rows (percent for accuracy, plain for AUC) from :func:`draw_scores`."""
    rows = []
    for (method, k_shot), values in sorted(scores.items(),
                                           key=lambda kv: (METHODS.index(kv[0][0]), kv[0][1])):
        accuracy, auc = mean_confidence_interval(values[:, 0]), mean_confidence_interval(
            values[:, 1])
        rows.append({"method": method, "hospital": hospital, "k_shot": k_shot,
                     "accuracy": 100 * accuracy.mean, "ci95": 100 * accuracy.ci95,
                     "auc": auc.mean, "auc_ci95": auc.ci95, "draws": len(values),
                     "n_test": n_test})
    return rows
