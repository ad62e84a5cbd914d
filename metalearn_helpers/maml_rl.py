"""MAML for reinforcement learning on 2-D point navigation (Finn, Abbeel & Levine 2017, arXiv
1703.03400, section 5.3), for notebook ``09_meta_rl`` (part A).

A task is a goal in [-0.5, 0.5]² (:class:`metalearn_helpers.rl_envs.PointNavigation`, MAML's
``PointEnvRandGoal``); the policy sees only its position, so it must find the goal from rewards.
MAML learns an initial policy ``theta`` such that ONE policy-gradient step on 20 trajectories of
a new goal gives a policy that walks to it.

Following the paper and its released code (github.com/cbfinn/maml_rl, ``maml_trpo_point.py``),
with the policy, its rollouts and advantages of :mod:`metalearn_helpers.point_policy`:

- Inner loop: REINFORCE (vanilla policy gradient), loss ``-mean_t log pi(a_t|s_t) A_t`` over the
  task's valid time steps, step size ``inner_lr`` 0.5 as in the released
  ``maml_trpo_point.py`` (the paper's text says 0.1), one step in training.
- Outer loop: the paper uses TRPO. We use the simplest correct alternative, the vanilla
  policy-gradient surrogate on the post-update trajectories (sampled with each task's adapted
  policy), differentiated through the inner step (second order by nested tapes unless
  ``first_order``) and applied with Adam: no line search or Fisher-vector products to write or
  test, and the meta-gradient is exactly what the finite-difference test checks. As in the
  released code, the gradient ignores how the pre-update trajectories' distribution depends on
  ``theta`` (the term ProMP and DiCE add); the meta-objective is the post-update surrogate with
  the sampled trajectories held fixed.

With ``inner_steps=0`` the same learner is ordinary multi-task policy gradient on random goals
(the paper's "pretrained" comparison), and with ``goal_input=True`` the policy also sees the goal
(the "oracle", ``PointEnvRandGoalOracle``).

Evaluation (:func:`evaluate_policy`) follows the released ``test_maml_point.py``: 40 trajectories
per goal and per stage, a first step of 0.5 and later steps of 0.25 (rllab's ``VPG`` with
``init_learning_rate`` 0.5 for its first update and ``learning_rate`` 0.25 after), the same for
every adapted policy; the oracle is not adapted.
"""

from __future__ import annotations

import dataclasses
import os

import keras
import numpy as np
import tensorflow as tf

from .checks import check_int, check_positive
from .episodes import TaskFamily, as_rng
from .evaluation import ScoreWithCI, mean_confidence_interval
from .point_policy import (POSITION_DIM, init_policy, policy_batch, sample_trajectories,
                           surrogate_loss)
from .rl_envs import sample_goals

TEST_SEED = 1703034  # held-out goals (the MAML paper's arXiv id); training draws other seeds
TEST_TRAJECTORIES = 40  # per goal and stage: test_maml_point.py's batches of 4,000 steps
FIRST_TEST_STEP, LATER_TEST_STEP = 0.5, 0.25  # test_maml_point.py's VPG step sizes


# -- tasks ----------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Goals:
    """Point-navigation tasks: ``goals`` ``(2,)`` or, batched, ``(n_tasks, 2)``."""

    goals: np.ndarray

    def arrays(self) -> tuple[np.ndarray]:
        return (self.goals,)


class PointGoals(TaskFamily):
    """Goals uniform in the arena, with the ``sample``/``batches`` interface that
    :func:`metalearn_helpers.training.meta_train` reads (a meta-batch is ``(n, 2)`` goals)."""

    def sample(self, seed=None) -> Goals:
        return Goals(as_rng(seed).uniform(-0.5, 0.5, size=2).astype(np.float32))

    def batches(self, meta_batch_size: int, seed=None):
        check_int("meta_batch_size", meta_batch_size)
        rng = as_rng(seed)
        while True:
            yield Goals(rng.uniform(-0.5, 0.5, size=(meta_batch_size, 2)).astype(np.float32))


def _tile(params, n_tasks):
    return [tf.tile(p[None], [n_tasks] + [1] * len(p.shape)) for p in params]


def adapt(params, batches, inner_lr, first_order=False):
    """Per-task adapted parameters after one policy-gradient step on each batch of ``batches``
    (one per inner step): ``theta_{k+1} = theta_k - inner_lr * grad surrogate(theta_k)``.

    ``params`` are shared or per task; the result has a leading task axis (no batches:
    ``params`` as they are). Differentiable (second order) when called under a tape, unless ``first_order`` (inner
    gradients treated as constants)."""
    if not batches:
        return list(params)
    shared = params[-1].shape.rank == 1
    task_params = _tile(params, tf.shape(batches[0][0])[0]) if shared else list(params)
    for batch in batches:
        with tf.GradientTape() as tape:
            tape.watch(task_params)
            loss = tf.reduce_sum(surrogate_loss(task_params, batch))
        grads = tape.gradient(loss, task_params)
        if first_order:
            grads = [tf.stop_gradient(g) for g in grads]
        task_params = [p - inner_lr * g for p, g in zip(task_params, grads)]
    return task_params


def meta_objective(params, inner_batches, outer_batch, inner_lr, first_order=False):
    """MAML's objective for RL: the mean over tasks of the surrogate on the post-update batch
    under the adapted parameters. With the sampled batches fixed, a deterministic function of
    ``params`` whose gradient is the meta-policy-gradient (see the module docstring)."""
    adapted = adapt(params, inner_batches, inner_lr, first_order)
    return tf.reduce_mean(surrogate_loss(adapted, outer_batch))


_adapt_once = tf.function(lambda params, batch, inner_lr: adapt(params, [batch], inner_lr))


def roll_out_and_adapt(params, goals, step_sizes, n_trajectories: int, rng,
                       goal_input: bool = False, discount: float = 0.99):
    """Sample with ``params``, take a policy-gradient step of ``step_sizes[0]`` per goal, sample
    with the adapted policies, ... once per step size. Returns ``(trajectories, batches)``:
    ``len(step_sizes) + 1`` :class:`Trajectories` (before and after each step) and their
    :func:`policy_batch`es."""
    trajectories, batches = [], []
    params = [tf.convert_to_tensor(p) for p in params]
    dtype = params[0].dtype
    for k in range(len(step_sizes) + 1):
        if k:
            params = _adapt_once(params, batches[-1], tf.constant(step_sizes[k - 1], dtype))
        trajectories.append(sample_trajectories(params, goals, n_trajectories, rng, goal_input))
        batches.append(policy_batch(trajectories[-1], discount, dtype))
    return trajectories, batches


# -- the learner ----------------------------------------------------------------------------------
class MAMLRL:
    """MAML for RL on point navigation, trainable by :func:`metalearn_helpers.training.meta_train`
    with :class:`PointGoals` (one meta-batch: ``(meta_batch_size, 2)`` goals; 40 in the paper).

    Args:
        inner_lr: policy-gradient step size of the inner loop (0.5 in the released code,
            0.1 in the paper's text).
        inner_steps: inner steps in meta-training (1 in the paper); 0 gives ordinary policy
            gradient on random goals (the "pretrained" comparison).
        first_order: treat the inner gradients as constants (first-order MAML).
        n_trajectories: trajectories per task and per step (20 in the paper).
        meta_lr: Adam learning rate of the outer loop.
        discount: of the returns (0.99).
        hidden: hidden layer sizes (100, 100).
        goal_input: the policy also sees the goal (the "oracle").
        seed: initial weights and the rollouts' random stream (checkpointed as a counter).

    Example::

        maml = MAMLRL()
        meta_train(maml, PointGoals(), n_steps=100, meta_batch_size=40, run_dir="runs/maml_rl")
        print(evaluate_policy(maml, test_goals(100)).score())
    """

    def __init__(self, *, inner_lr: float = 0.5, inner_steps: int = 1, first_order: bool = False,
                 n_trajectories: int = 20, meta_lr: float = 1e-3, discount: float = 0.99,
                 hidden=(100, 100), goal_input: bool = False, seed: int = 0):
        check_positive("inner_lr", inner_lr)
        check_positive("meta_lr", meta_lr)
        if not 0 <= discount <= 1:
            raise ValueError(f"discount must be in [0, 1], got {discount}.")
        self.inner_lr, self.discount = float(inner_lr), float(discount)
        self.inner_steps = check_int("inner_steps", inner_steps, minimum=0)
        self.n_trajectories = check_int("n_trajectories", n_trajectories)
        self.first_order, self.goal_input = bool(first_order), bool(goal_input)
        self.seed = check_int("seed", seed, minimum=0)
        observation_dim = POSITION_DIM * (2 if goal_input else 1)
        self.policy = tf.Module(name="gaussian_mlp_policy")
        self.policy.params = [tf.Variable(p, name=f"param_{i}") for i, p in enumerate(
            init_policy(observation_dim, tuple(hidden), seed=self.seed))]
        self.meta_optimizer = keras.optimizers.Adam(meta_lr)
        self.meta_optimizer.build(self.params)
        self.rollouts = tf.Variable(0, dtype=tf.int64, trainable=False, name="rollouts")
        self._meta_update = tf.function(self._meta_update_eager)
        self.config = dict(inner_lr=self.inner_lr, inner_steps=self.inner_steps,
                           first_order=self.first_order, n_trajectories=self.n_trajectories,
                           meta_lr=float(meta_lr), discount=self.discount,
                           hidden=[int(h) for h in hidden], goal_input=self.goal_input,
                           seed=self.seed)

    @property
    def params(self) -> list:
        """The policy's parameters ``[W1, b1, W2, b2, W3, b3, log_std]`` (tf.Variables)."""
        return self.policy.params

    # -- protocol of metalearn_helpers.training ---------------------------------------------------
    @property
    def meta_variables(self) -> list:
        return list(self.params)

    def trackables(self) -> dict:
        return {"policy": self.policy, "optimizer": self.meta_optimizer, "rollouts": self.rollouts}

    def train_step(self, goals) -> dict:
        """One meta-iteration on a meta-batch of goals ``(n_tasks, 2)``: sample, adapt, sample
        again, and one Adam step on the meta-objective. Non-finite actions or returns give a NaN
        loss without an update, so :func:`~metalearn_helpers.training.meta_train` stops and
        goes back to its last good checkpoint."""
        goals = np.asarray(goals, dtype=np.float64)
        if goals.ndim != 2 or goals.shape[1] != POSITION_DIM:
            raise ValueError(f"goals must have shape (n_tasks, 2), got {goals.shape}.")
        rng = np.random.default_rng([self.seed, int(self.rollouts.numpy())])
        self.rollouts.assign_add(1)
        try:
            trajectories, batches = roll_out_and_adapt(
                self.params, goals, [self.inner_lr] * self.inner_steps, self.n_trajectories,
                rng, self.goal_input, self.discount)
        except FloatingPointError:
            return {"loss": float("nan")}
        loss = self._meta_update(batches[:-1], batches[-1])
        return {"loss": loss, "return_before": float(trajectories[0].average_return().mean()),
                "return_after": float(trajectories[-1].average_return().mean())}

    def _meta_update_eager(self, inner_batches, outer_batch):
        with tf.GradientTape() as tape:
            loss = meta_objective(self.params, inner_batches, outer_batch, self.inner_lr,
                                  self.first_order)
        grads = tape.gradient(loss, self.params)
        self.meta_optimizer.apply_gradients(zip(grads, self.params))
        return loss


# -- evaluation -----------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Adaptation:
    """What a policy does on some goals before and after each adaptation step: ``returns``
    ``(n_goals, n_steps + 1)`` (average return of each goal's trajectories) and
    ``trajectories[k]`` after ``k`` steps (``.positions`` for plots)."""

    returns: np.ndarray
    trajectories: list

    def score(self) -> ScoreWithCI:
        """Mean return after 0, 1, ... steps over the goals, with 95 % CIs (``score[k]``)."""
        return mean_confidence_interval(self.returns)


def test_step_sizes(n_steps: int) -> list:
    """Step sizes of ``n_steps`` test-time adaptation steps: ``FIRST_TEST_STEP`` (0.5), then
    ``LATER_TEST_STEP`` (0.25), as in the released ``test_maml_point.py``."""
    check_int("n_steps", n_steps, minimum=0)
    return [FIRST_TEST_STEP] + [LATER_TEST_STEP] * (n_steps - 1) if n_steps else []


def adaptation_returns(params, goals, step_sizes, n_trajectories: int = TEST_TRAJECTORIES,
                       seed: int = 0, goal_input: bool = False,
                       discount: float = 0.99) -> Adaptation:
    """Adapt ``params`` (a policy's parameters, e.g. ``MAMLRL.params``) to each goal by one
    policy-gradient step per entry of ``step_sizes``, each on ``n_trajectories`` fresh
    trajectories, as at meta-test time in the paper (Figure 4), and record the returns and
    paths."""
    step_sizes = [float(step) for step in step_sizes]
    if any(not step >= 0 for step in step_sizes):
        raise ValueError(f"step sizes must be at least 0 (0: no adaptation), got {step_sizes}.")
    trajectories, _ = roll_out_and_adapt(params, goals, step_sizes, n_trajectories,
                                         np.random.default_rng(seed), goal_input, discount)
    return Adaptation(np.stack([t.average_return() for t in trajectories], axis=1), trajectories)


def test_goals(n_goals: int = 100, seed: int = TEST_SEED) -> np.ndarray:
    """The held-out goals every method is compared on (never a training seed)."""
    return sample_goals(n_goals, seed=seed)


def protocol(n_goals: int, n_steps: int) -> str:
    """How :func:`evaluate_policy` scores a policy, for run records."""
    return (f"{n_goals} held-out goals uniform in [-0.5, 0.5]² (test_goals, seed {TEST_SEED}); "
            f"for each goal, {TEST_TRAJECTORIES} trajectories of 100 steps with the policy, then "
            f"{n_steps} times: one policy-gradient step (REINFORCE with the linear baseline; "
            f"step size {FIRST_TEST_STEP} for the first step, {LATER_TEST_STEP} after, as in the "
            f"released test_maml_point.py) on the last {TEST_TRAJECTORIES} trajectories and "
            f"{TEST_TRAJECTORIES} new ones; average undiscounted return of each goal's "
            f"trajectories after 0..{n_steps} steps, mean ± 95 % CI over goals; the oracle (goal "
            f"as input) is not adapted (step size 0, as in the released test script)")


def evaluate_policy(learner: MAMLRL, goals, n_steps: int = 3, seed: int = 0) -> Adaptation:
    """:func:`adaptation_returns` of a learner's policy with the released test script's step
    sizes (:func:`test_step_sizes`) on ``TEST_TRAJECTORIES`` trajectories per stage; an oracle,
    which sees the goal, is not adapted."""
    steps = test_step_sizes(n_steps)
    if learner.goal_input:
        steps = [0.0] * n_steps
    return adaptation_returns(learner.params, goals, steps, TEST_TRAJECTORIES, seed,
                              learner.goal_input, learner.discount)


# -- committed policies (notebook 09) -------------------------------------------------------------
POLICY_RECORDS = {"maml": "maml_rl_point", "pretrained": "maml_rl_point_pretrained",
                  "oracle": "maml_rl_point_oracle"}
COMPARISON_RECORD = "maml_rl_point_comparison"
LEARNER_ARGUMENTS = ("inner_lr", "inner_steps", "first_order", "n_trajectories", "meta_lr",
                     "discount", "hidden", "goal_input", "seed")


def load_policy(name: str, folder=None) -> MAMLRL:
    """A committed policy, e.g. ``load_policy("maml_rl_point")``: the learner rebuilt from the
    record ``<folder>/<name>.json`` (default ``weights/``) with the weights of ``<name>.npz``."""
    from .records import WEIGHTS_DIR, load_record, load_weights

    folder = WEIGHTS_DIR if folder is None else folder
    path = os.path.join(folder, f"{name}.json")
    if not os.path.exists(path):
        raise FileNotFoundError(f"no record {path}; committed MAML-RL policies: "
                                f"{sorted(POLICY_RECORDS.values())} (made by "
                                f"scripts/train_maml_rl.py).")
    settings = load_record(path)["hyperparameters"]
    learner = MAMLRL(**{k: settings[k] for k in LEARNER_ARGUMENTS})
    load_weights(learner, os.path.join(folder, f"{name}.npz"))
    return learner


def comparison_policies(seed: int = 0, folder=None) -> dict:
    """The policies of the paper's Figure 4: ``"maml"``, ``"pretrained"`` and ``"oracle"`` loaded
    from the committed records, and ``"random"``, a freshly initialised policy (``seed``)."""
    policies = {label: load_policy(name, folder) for label, name in POLICY_RECORDS.items()}
    return {**policies, "random": MAMLRL(seed=seed)}


def return_table(folder=None) -> str:
    """The committed return-vs-adaptation-steps comparison as Markdown (one row per method)."""
    from .records import WEIGHTS_DIR, load_record, markdown_table, maml_rl_rows

    folder = WEIGHTS_DIR if folder is None else folder
    record = load_record(os.path.join(folder, f"{COMPARISON_RECORD}.json"))
    return markdown_table(maml_rl_rows(record["test"]))
