"""MAML's sinusoid regression experiment: the pretrained baseline, training with the paper's
settings (:data:`metalearn_helpers.papers.SINUSOID_SETTINGS`), test-time adaptation curves and
the committed runs.

Defined in notebook ``03_maml_sinusoid``; ``scripts/train_sinusoid.py`` runs the paper's full
schedule and writes ``weights/sinusoid_<name>.npz`` and ``.json``.

Finn, Abbeel & Levine 2017, "Model-Agnostic Meta-Learning for Fast Adaptation of Deep Networks",
arXiv 1703.03400, section 5.1: tasks ``y = A sin(x - phase)``, ``A ~ U[0.1, 5]``,
``phase ~ U[0, pi]``, ``x ~ U[-5, 5]``; a 1-40-40-1 ReLU network; MSE; K = 10 support (and 10
query) points per training task, meta-batch 25, one inner step with ``alpha = 0.01``, Adam with
learning rate 0.001, 70,000 meta-iterations. The baseline is the same network pretrained to
regress on all tasks, fine-tuned at test time by gradient descent on the K points.

Evaluation protocol used everywhere here: held-out tasks drawn by
:func:`metalearn_helpers.evaluation.evaluate` from seed :data:`TEST_SEED`, K support points and
100 query points with ``x ~ U[-5, 5]`` sampled per task, plain gradient descent on the support MSE,
query MSE after 0, 1, ..., 10 steps; mean and 95 % confidence interval over tasks.
"""

from __future__ import annotations

import weakref

import keras
import numpy as np
import tensorflow as tf

from .episodes import SinusoidTasks
from .evaluation import ScoreWithCI, evaluate, mean_confidence_interval
from .learners import task_loss_and_metric
from .maml import MAML
from .models import sinusoid_mlp
from .papers import SINUSOID_SETTINGS
from .training import meta_train

ALGORITHMS = ("maml", "fomaml", "pretrained")
EVAL_STEPS = (0, 1, 5, 10)
EVAL_K_SHOTS = (5, 10)
N_QUERY = 100
TEST_SEED, VALIDATION_SEED = 2017, 1
# A task's adaptation counts as diverged when its query MSE exceeds this: eight times the largest
# error of predicting y = 0 (A^2 / 2 <= 12.5), reached only when gradient descent blows up.
DIVERGED_MSE = 100.0
FINE_TUNE_LRS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1)  # the baseline's step sizes to choose from


class PretrainedBaseline(MAML):
    """The baseline of MAML's sinusoid experiment (Finn et al. 2017, arXiv 1703.03400, 5.1): one
    network trained by ordinary regression on all tasks, then fine-tuned on a new task.

    Each ``train_step`` pools every point (support and query) of a meta-batch of random tasks into
    one mini-batch and takes an optimizer step on its MSE: there is no inner loop, so the network
    learns the best single function for the whole family. It follows the protocol of
    :func:`metalearn_helpers.training.meta_train`, so it trains with the same loop as MAML, and it
    inherits MAML's test-time half (``adapt``, ``forward``, ``score_episode``): fine-tuning is
    ``eval_inner_steps`` gradient steps of size ``fine_tune_lr`` on the support set.

    Args:
        model: a built ``keras.Model`` whose outputs are the regression targets.
        fine_tune_lr: gradient-descent step size at test time (the paper tuned it).
        meta_optimizer: Keras optimizer of the pretraining (default ``Adam(1e-3)``).
        eval_inner_steps: fine-tuning steps of ``score_episode``.
    """

    def __init__(self, model, fine_tune_lr: float = 0.01, meta_optimizer=None,
                 eval_inner_steps: int = 10):
        super().__init__(model, inner_lr=fine_tune_lr, task_type="regression",
                         meta_optimizer=meta_optimizer, eval_inner_steps=eval_inner_steps)

    @tf.function
    def train_step(self, support_x, support_y, query_x, query_y):
        """One optimizer step on the MSE of all points of all tasks of the meta-batch."""
        x = tf.concat([support_x, query_x], axis=1)  # (tasks, points, ...)
        y = tf.concat([support_y, query_y], axis=1)
        x = tf.reshape(x, tf.concat([[-1], tf.shape(x)[2:]], axis=0))  # one pool of points
        y = tf.reshape(y, tf.concat([[-1], tf.shape(y)[2:]], axis=0))
        variables = self.meta_variables
        with tf.GradientTape() as tape:
            loss, _ = task_loss_and_metric(self.task_type, y, self.model(x))
        self.meta_optimizer.apply(tape.gradient(loss, variables), variables)
        return {"loss": loss}


INITS = ("paper", "keras")


def paper_initialisation(model, seed: int = 0) -> None:
    """Set ``model``'s weights as MAML's code initialises the sinusoid network: kernels from a
    normal distribution truncated at two standard deviations, standard deviation 0.01, and zero
    biases (Finn et al.'s ``construct_fc_weights``). Keras' default (Glorot-uniform kernels) starts
    from much larger weights."""
    for i, variable in enumerate(model.trainable_variables):
        if len(variable.shape) > 1:
            variable.assign(tf.random.stateless_truncated_normal(variable.shape, seed=[seed, i],
                                                                 stddev=0.01))
        else:
            variable.assign(tf.zeros(variable.shape))


def make_algorithm(name: str, seed: int = 0, init: str = "paper", **overrides):
    """A fresh 1-40-40-1 network wrapped as ``"maml"``, ``"fomaml"`` (first-order MAML) or
    ``"pretrained"`` (:class:`PretrainedBaseline`), with the paper's settings; ``overrides``
    replace constructor arguments. ``init``: ``"paper"`` (:func:`paper_initialisation`) or
    ``"keras"`` (Keras' defaults); either way the initial weights depend only on ``seed``."""
    if name not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {name!r}.")
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}.")
    keras.utils.set_random_seed(seed)
    model = sinusoid_mlp()
    if init == "paper":
        paper_initialisation(model, seed)
    optimizer = keras.optimizers.Adam(SINUSOID_SETTINGS["meta_lr"])
    if name == "pretrained":
        return PretrainedBaseline(model, **{"meta_optimizer": optimizer, **overrides})
    kwargs = dict(inner_lr=SINUSOID_SETTINGS["inner_lr"], inner_steps=SINUSOID_SETTINGS["inner_steps"],
                  first_order=name == "fomaml", task_type="regression",
                  meta_optimizer=optimizer, eval_inner_steps=1)
    return MAML(model, **{**kwargs, **overrides})


def train_tasks() -> SinusoidTasks:
    """The meta-training task family: K = 10 support and 10 query points per task (the paper)."""
    return SinusoidTasks(k_shot=SINUSOID_SETTINGS["train_k_shot"],
                         n_query=SINUSOID_SETTINGS["train_n_query"])


def train_sinusoid(name: str, n_steps: int, *, seed: int = 0, init: str = "paper",
                   inner_lr: float | None = None, run_dir=None,
                   meta_batch_size: int | None = None, val_tasks: int = 100,
                   validate_every: int = 1000, log_every: int = 10, progress: bool = True,
                   live_plot: bool = False, algorithm=None):
    """Train ``name`` (see :func:`make_algorithm`, also for ``init``) with the shared loop
    :func:`metalearn_helpers.training.meta_train`, checkpointing in ``run_dir`` (calling again
    resumes). ``inner_lr`` replaces the paper's α (MAML and first-order MAML only). MAML and
    first-order MAML are validated by the query MSE after one inner step on ``val_tasks`` tasks
    with K = 10 (0: no validation). Returns ``(algorithm, history)``."""
    if algorithm is None:
        overrides = {} if inner_lr is None else {"inner_lr": inner_lr}
        algorithm = make_algorithm(name, seed, init, **overrides)
    validate = None
    if val_tasks and name != "pretrained":
        val_family = SinusoidTasks(k_shot=SINUSOID_SETTINGS["train_k_shot"], n_query=N_QUERY)

        def validate():
            score = evaluate(algorithm.score_episode, val_family, val_tasks,
                             seed=VALIDATION_SEED, progress=False)
            return {"mse": score.mean}

    history = meta_train(algorithm, train_tasks(), n_steps=n_steps,
                         meta_batch_size=meta_batch_size or SINUSOID_SETTINGS["meta_batch_size"],
                         seed=seed, run_dir=run_dir, validate=validate,
                         validate_every=validate_every, checkpoint_every=min(1000, n_steps),
                         log_every=log_every, progress=progress, live_plot=live_plot)
    return algorithm, history


# -- test-time adaptation -------------------------------------------------------------------------
def _gradient_descent_outputs(algorithm):
    """The algorithm's test-time adaptation as one compiled function of (weights, data, steps,
    lr). It holds the algorithm weakly, so caching it does not keep the algorithm alive."""
    algorithm = weakref.ref(algorithm)

    def forward(params, x):
        return algorithm().forward(params, x)

    @tf.function(reduce_retracing=True)
    def outputs_per_step(params, support_x, support_y, x, steps, lr):
        outputs = tf.TensorArray(tf.float32, size=steps + 1)
        outputs = outputs.write(0, forward(params, x))
        for step in tf.range(steps):
            with tf.GradientTape() as tape:
                tape.watch(params)
                loss = tf.reduce_mean(tf.square(forward(params, support_x) - support_y))
            params = [p - lr * g for p, g in zip(params, tape.gradient(loss, params))]
            outputs = outputs.write(step + 1, forward(params, x))
        return outputs.stack()

    return outputs_per_step


_COMPILED = weakref.WeakKeyDictionary()  # algorithm -> its compiled adaptation


def adaptation_outputs(algorithm, support_x, support_y, x, steps: int, lr: float) -> np.ndarray:
    """The model's outputs at ``x`` before and after each of ``steps`` plain gradient-descent
    steps of size ``lr`` on the support MSE, starting from the algorithm's (meta-learned)
    weights: an array of shape ``(steps + 1, len(x), 1)``.

    This is the test-time adaptation of MAML (``lr = inner_lr``) and of the pretrained baseline
    (``lr`` its fine-tuning step size) alike; compiled once for any K, ``steps`` and ``lr``.
    """
    if algorithm not in _COMPILED:
        _COMPILED[algorithm] = _gradient_descent_outputs(algorithm)
    params = [tf.convert_to_tensor(v) for v in algorithm.model.trainable_variables]
    as_tensor = lambda a: tf.convert_to_tensor(np.asarray(a, np.float32).reshape(-1, 1))  # noqa: E731
    return _COMPILED[algorithm](params, as_tensor(support_x), as_tensor(support_y), as_tensor(x),
                                tf.constant(int(steps)), tf.constant(float(lr))).numpy()


def adaptation_curves(algorithm, k_shot: int, lr: float, max_steps: int = 10,
                      n_tasks: int = 600, seed: int = TEST_SEED, progress: bool = True,
                      support_range=(-5.0, 5.0), query_range=None):
    """Query MSE of each of ``n_tasks`` held-out tasks after 0, 1, ..., ``max_steps`` gradient
    steps on its ``k_shot`` support points: a float64 array of shape ``(n_tasks, max_steps + 1)``.

    The tasks are drawn by the course's :func:`metalearn_helpers.evaluation.evaluate` (so, for a
    given ``seed``, every method sees the same tasks); each has ``N_QUERY`` = 100 query points.
    Support and query inputs are uniform on ``support_range`` and ``query_range`` (default: the
    same; e.g. ``(0, 5)`` and ``(-5, 0)`` score extrapolation to the half without points).
    Where gradient descent blew up numerically (the outputs overflowed), the MSE is ``inf``;
    :func:`mse_table` counts such tasks, and all with an MSE above :data:`DIVERGED_MSE`, as
    diverged instead of averaging them.
    """
    tasks = SinusoidTasks(k_shot=k_shot, n_query=N_QUERY, x_range=tuple(support_range))
    (low, high), (q_low, q_high) = support_range, query_range or support_range

    def curve(episode):
        query_x, query_y = episode.query_x, episode.query_y
        if query_range is not None:  # move the query points to query_range
            query_x = (q_low + (query_x - low) * (q_high - q_low) / (high - low)).astype(np.float32)
            query_y = SinusoidTasks.function(query_x, episode.info["amplitude"],
                                             episode.info["phase"]).astype(np.float32)
        outputs = adaptation_outputs(algorithm, episode.support_x, episode.support_y,
                                     query_x, max_steps, lr).astype(np.float64)
        with np.errstate(over="ignore", invalid="ignore"):
            mse = np.mean(np.square(outputs - query_y[None]), axis=(1, 2))
        return np.where(np.isfinite(mse), mse, np.inf)

    return evaluate(curve, tasks, n_tasks, seed=seed, progress=progress).values


def mse_table(curves: np.ndarray, steps=EVAL_STEPS) -> dict[int, ScoreWithCI]:
    """``{steps: mean query MSE ± 95 % CI}`` from :func:`adaptation_curves`, over the tasks whose
    MSE is at most :data:`DIVERGED_MSE` (``score.n`` of them; ``len(curves) - score.n``
    diverged)."""
    table = {}
    for s in steps:
        finite = curves[curves[:, s] <= DIVERGED_MSE, s]
        table[s] = (mean_confidence_interval(finite) if finite.size
                    else ScoreWithCI(np.inf, np.inf, 0, finite))
    return table


def tune_fine_tune_lr(algorithm, k_shot: int, lrs=FINE_TUNE_LRS, steps: int = 10,
                      n_tasks: int = 200, seed: int = VALIDATION_SEED):
    """The step size in ``lrs`` with the lowest mean query MSE after ``steps`` steps on
    ``n_tasks`` validation tasks (seed apart from the test tasks'). Returns ``(best, {lr: mse})``;
    a step size that diverges (:data:`DIVERGED_MSE`) on any task scores ``inf``. The paper tuned the baseline's step size
    automatically too (its figure 3 names 0.01 for K = 5 and 0.02 for K = 10)."""
    scores = {}
    for lr in lrs:
        final = adaptation_curves(algorithm, k_shot, lr, steps, n_tasks, seed,
                                  progress=False)[:, -1]
        with np.errstate(over="ignore"):
            scores[float(lr)] = float(np.mean(final)) if (final <= DIVERGED_MSE).all() else np.inf
    return min(scores, key=scores.get), scores


# -- committed runs --------------------------------------------------------------------------------
def run_name(name: str, init: str = "paper", seed: int = 0, inner_lr: float | None = None) -> str:
    """``sinusoid_<name>``, with ``_keras_init`` for runs from Keras' default initialisation,
    ``_alpha<inner_lr>`` for another inner learning rate than the paper's and ``_seed<seed>`` for
    another seed than 0 (so that such runs do not replace the paper-setting run)."""
    other_lr = inner_lr is not None and inner_lr != SINUSOID_SETTINGS["inner_lr"]
    return (f"sinusoid_{name}" + ("" if init == "paper" else f"_{init}_init")
            + (f"_alpha{inner_lr:g}" if other_lr else "") + ("" if seed == 0 else f"_seed{seed}"))


def table_rows(curves_by_k: dict[int, np.ndarray], steps=EVAL_STEPS) -> list[dict]:
    """``{k_shot: adaptation_curves(...)}`` as JSON-friendly rows for a run record: mean MSE and
    CI over the tasks that did not diverge, and how many diverged."""
    rows = []
    for k, curves in curves_by_k.items():
        for s, score in mse_table(curves, steps).items():
            finite = bool(score.n)
            rows.append({"k_shot": k, "inner_steps": s, "mse": score.mean if finite else None,
                         "ci95": score.ci95 if finite else None, "episodes": score.n,
                         "diverged": len(curves) - score.n})
    return rows


def record_table(record: dict) -> dict[tuple[int, int], tuple[float, float]]:
    """A record's test table as ``{(k_shot, inner_steps): (mse, ci95)}``."""
    return {(r["k_shot"], r["inner_steps"]): (r["mse"], r["ci95"]) for r in record["test"]}
