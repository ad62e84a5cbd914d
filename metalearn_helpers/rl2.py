"""RL²: a recurrent policy whose memory is the learning algorithm (Duan et al. 2016, arXiv
1611.02779), on the Bernoulli bandits of :mod:`metalearn_helpers.bandits`.

Defined for notebook ``09_meta_rl`` (part B). At every pull the GRU receives the previous action
(one-hot), the previous reward and the termination flag of the previous episode (in a bandit each
pull is an episode, so the flag is 1 after the first pull and 0 before it), and keeps its hidden
state across the ``n_pulls`` pulls of one task; it is reset only between tasks. The "slow"
outer loop trains its weights across tasks to maximise the discounted total reward of a whole
trial, so what the hidden state does within a trial is a learned bandit algorithm.

As in the paper (section 3.3 and appendix): a GRU of 256 units, discount 0.99 across the whole
trial and generalised advantage estimation with lambda 0.3 (GAE, Schulman et al. 2015, arXiv
1506.02438). The paper's outer optimiser is first-order TRPO with 250,000 steps per iteration
and a separate recurrent baseline; to fit a CPU we use PPO's clipped objective (Schulman et al.
2017, arXiv 1707.06347) with Adam, a value head on the policy's GRU and a few hundred tasks per
iteration (see ``scripts/train_rl2.py`` for the settings of the committed runs).

One :meth:`RL2.train_step` does a whole iteration inside one ``tf.function``: it plays
``n_pulls`` pulls on every task of the meta-batch (a ``tf.while_loop`` over pulls, actions
sampled with Gumbel noise from the learner's own ``tf.random.Generator``, which is checkpointed
with the weights), computes GAE advantages, then makes ``ppo_epochs`` passes of clipped-PPO
updates over the batch, re-running the GRU over the recorded inputs.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from .bandits import BanditTasks
from .evaluation import ScoreWithCI, mean_confidence_interval
from .checks import check_int


class RL2:
    """The RL² learner for ``k_arms``-armed bandits played for ``n_pulls`` pulls.

    Args:
        k_arms, n_pulls: the bandit family it is trained on (at least 2 and 1).
        units: GRU units (256 in the paper).
        meta_lr: Adam learning rate of the outer loop.
        discount, gae_lambda: 0.99 and 0.3 as in the paper's bandit experiments.
        clip: PPO's ratio clipping; ppo_epochs, n_minibatches: updates per iteration.
        entropy_coef, value_coef: weights of the entropy bonus and of the value loss.
        value_scale: the value head predicts returns divided by this (1: raw returns; larger
            for long trials, whose returns reach ``n_pulls``).
        anneal_iterations: if given, the learning rate and the entropy bonus fall linearly from
            ``meta_lr`` and ``entropy_coef`` to 0 over this many iterations, as PPO's Atari
            setting anneals its step size (Schulman et al. 2017, arXiv 1707.06347, appendix A);
            the count lives in the optimizer, so a resumed run continues the schedule. ``scripts/train_rl2.py``
            uses it for a second phase started from a trained policy (``--init-from``).
        seed: seed of the initial weights and of the learner's random stream.

    Example::

        tasks = BernoulliBandits(k_arms=5, n_pulls=10)
        rl2 = RL2(k_arms=5, n_pulls=10)
        meta_train(rl2, tasks, n_steps=500, meta_batch_size=250, run_dir="runs/rl2")
        print(rl2.evaluate(tasks.test_set(1000)))
    """

    def __init__(self, k_arms: int, n_pulls: int, *, units: int = 256, meta_lr: float = 1e-3,
                 discount: float = 0.99, gae_lambda: float = 0.3, clip: float = 0.2,
                 ppo_epochs: int = 4, n_minibatches: int = 1, entropy_coef: float = 0.01,
                 value_coef: float = 0.5, value_scale: float = 1.0,
                 max_grad_norm: float = 1.0, anneal_iterations: int | None = None,
                 seed: int = 0):
        self.k_arms = check_int("k_arms", k_arms, 2)
        self.n_pulls = check_int("n_pulls", n_pulls, 1)
        self.units = check_int("units", units, 1)
        self.ppo_epochs = check_int("ppo_epochs", ppo_epochs, 1)
        self.n_minibatches = check_int("n_minibatches", n_minibatches, 1)
        for name, value in dict(meta_lr=meta_lr, clip=clip, max_grad_norm=max_grad_norm).items():
            if not value > 0:
                raise ValueError(f"{name} must be positive, got {value}.")
        for name, value in dict(discount=discount, gae_lambda=gae_lambda).items():
            if not 0 <= value <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {value}.")
        self.discount, self.gae_lambda, self.clip = float(discount), float(gae_lambda), float(clip)
        self.entropy_coef, self.value_coef = float(entropy_coef), float(value_coef)
        if not value_scale > 0:
            raise ValueError(f"value_scale must be positive, got {value_scale}.")
        self.value_scale = float(value_scale)
        self.anneal_iterations = (None if anneal_iterations is None
                                  else check_int("anneal_iterations", anneal_iterations, 1))
        keras.utils.set_random_seed(seed)
        self.cell = keras.layers.GRUCell(self.units, name="gru")
        inputs = keras.Input((None, self.k_arms + 2))
        hidden = keras.layers.RNN(self.cell, return_sequences=True)(inputs)
        self.policy_head = keras.layers.Dense(self.k_arms, name="policy")
        self.value_head = keras.layers.Dense(1, name="value")
        self.model = keras.Model(inputs, [self.policy_head(hidden), self.value_head(hidden)])
        self.meta_optimizer = keras.optimizers.Adam(self._learning_rate(meta_lr),
                                                    global_clipnorm=max_grad_norm)
        self.meta_optimizer.build(self.meta_variables)
        self.rng = tf.random.Generator.from_seed(seed)
        self._train_step = tf.function(self._iteration)
        self._play = tf.function(self._rollout, reduce_retracing=True)  # any number of tasks
        self.config = dict(k_arms=self.k_arms, n_pulls=self.n_pulls, units=self.units,
                           meta_lr=float(meta_lr), discount=self.discount,
                           gae_lambda=self.gae_lambda, clip=self.clip,
                           ppo_epochs=self.ppo_epochs, n_minibatches=self.n_minibatches,
                           entropy_coef=self.entropy_coef, value_coef=self.value_coef,
                           value_scale=self.value_scale, max_grad_norm=float(max_grad_norm),
                           anneal_iterations=self.anneal_iterations)

    # -- protocol of metalearn_helpers.training ---------------------------------------------------
    @property
    def meta_variables(self) -> list:
        """What the slow outer loop learns: the GRU and the two heads."""
        return list(self.model.trainable_variables)

    def trackables(self) -> dict:
        # "optimizer" as in the checkpoints written before the meta_optimizer naming.
        return {"model": self.model, "optimizer": self.meta_optimizer, "rng": self.rng}

    def train_step(self, arm_probabilities) -> dict:
        """One RL² iteration on a meta-batch ``(meta_batch_size, k_arms)`` of bandits."""
        self._check_tasks(arm_probabilities)
        return self._train_step(tf.convert_to_tensor(arm_probabilities, tf.float32))

    def _check_tasks(self, arm_probabilities) -> None:
        shape = tuple(arm_probabilities.shape)
        if len(shape) != 2 or shape[1] != self.k_arms:
            raise ValueError(f"this RL² policy has {self.k_arms} actions (arms), so the tasks "
                             f"must be arm probabilities of shape (n_tasks, {self.k_arms}); got "
                             f"shape {shape}.")

    # -- acting -----------------------------------------------------------------------------------
    def _rollout(self, arm_probabilities, uniforms, gumbel):
        """Play ``n_pulls`` pulls on every task. ``uniforms`` ``(B, n, k)`` fix the rewards
        (``u < p``), ``gumbel`` ``(B, n, k)`` the sampled actions (zeros: greedy).

        Returns the per-step GRU inputs ``(B, n, k + 2)``, actions, rewards, log-probabilities
        and values ``(B, n)``. A task with a non-finite arm probability gets NaN rewards."""
        batch = tf.shape(arm_probabilities)[0]
        finite = tf.reduce_all(tf.math.is_finite(arm_probabilities), axis=1)
        def array(dtype):
            return tf.TensorArray(dtype, size=self.n_pulls)

        inputs, actions, rewards = array(tf.float32), array(tf.int32), array(tf.float32)
        log_probs, values = array(tf.float32), array(tf.float32)
        x = tf.zeros([batch, self.k_arms + 2])
        state = tf.zeros([batch, self.units])
        for t in tf.range(self.n_pulls):
            inputs = inputs.write(t, x)
            state, _ = self.cell(x, [state])
            logits = self.policy_head(state)
            action = tf.argmax(logits + gumbel[:, t], axis=1, output_type=tf.int32)
            won = tf.gather(uniforms[:, t], action, batch_dims=1) < tf.gather(
                arm_probabilities, action, batch_dims=1)
            reward = tf.where(finite, tf.cast(won, tf.float32), np.nan)
            actions = actions.write(t, action)
            rewards = rewards.write(t, reward)
            log_probs = log_probs.write(t, tf.gather(tf.nn.log_softmax(logits), action,
                                                     batch_dims=1))
            values = values.write(t, self.value_head(state)[:, 0] * self.value_scale)
            x = tf.concat([tf.one_hot(action, self.k_arms), reward[:, None],
                           tf.ones([batch, 1])], axis=1)
        return (tf.transpose(inputs.stack(), [1, 0, 2]),
                *(tf.transpose(a.stack()) for a in (actions, rewards, log_probs, values)))

    def _advantages(self, rewards, values):
        """GAE(gamma, lambda) over the trial; the value after the last pull is 0."""
        next_values = tf.concat([values[:, 1:], tf.zeros_like(values[:, :1])], axis=1)
        deltas = rewards + self.discount * next_values - values
        decay = self.discount * self.gae_lambda
        reversed_adv = tf.scan(lambda carry, delta: delta + decay * carry,
                               tf.reverse(tf.transpose(deltas), [0]),
                               initializer=tf.zeros_like(deltas[:, 0]))
        advantages = tf.transpose(tf.reverse(reversed_adv, [0]))
        return advantages, advantages + values

    # -- learning ---------------------------------------------------------------------------------
    def _learning_rate(self, meta_lr: float):
        """``meta_lr``, or its linear decay to 0 over ``anneal_iterations`` iterations (the
        optimizer counts ``ppo_epochs * n_minibatches`` updates per iteration)."""
        if self.anneal_iterations is None:
            return meta_lr
        return keras.optimizers.schedules.PolynomialDecay(
            meta_lr, self.anneal_iterations * self.ppo_epochs * self.n_minibatches, 0.0)

    def entropy_bonus(self):
        """The weight of the entropy bonus now: ``entropy_coef``, annealed like the learning rate
        when ``anneal_iterations`` is set."""
        if self.anneal_iterations is None:
            return tf.constant(self.entropy_coef)
        updates = self.anneal_iterations * self.ppo_epochs * self.n_minibatches
        done = tf.cast(self.meta_optimizer.iterations, tf.float32) / updates
        return self.entropy_coef * tf.maximum(1.0 - done, 0.0)

    def _ppo_loss(self, inputs, actions, old_log_probs, advantages, returns):
        logits, values = self.model(inputs)
        log_probs = tf.nn.log_softmax(logits)
        log_prob = tf.gather(log_probs, actions, batch_dims=2)
        ratio = tf.exp(log_prob - old_log_probs)
        clipped = tf.clip_by_value(ratio, 1 - self.clip, 1 + self.clip)
        policy_loss = -tf.reduce_mean(tf.minimum(ratio * advantages, clipped * advantages))
        value_loss = tf.reduce_mean(tf.square(values[..., 0] - returns / self.value_scale))
        entropy = -tf.reduce_mean(tf.reduce_sum(tf.exp(log_probs) * log_probs, axis=-1))
        loss = policy_loss + self.value_coef * value_loss - self.entropy_bonus() * entropy
        return loss, entropy, tf.reduce_mean(old_log_probs - log_prob)

    def _iteration(self, arm_probabilities):
        shape = [tf.shape(arm_probabilities)[0], self.n_pulls, self.k_arms]
        uniforms = self.rng.uniform(shape)
        gumbel = -tf.math.log(-tf.math.log(self.rng.uniform(shape, 1e-20, 1.0)))
        inputs, actions, rewards, old_log_probs, values = self._rollout(
            arm_probabilities, uniforms, gumbel)
        advantages, returns = self._advantages(rewards, values)
        mean, var = tf.nn.moments(advantages, axes=[0, 1])
        advantages = (advantages - mean) / (tf.sqrt(var) + 1e-8)
        batch = tf.shape(arm_probabilities)[0]
        size = batch // self.n_minibatches
        for _ in range(self.ppo_epochs):
            order = tf.argsort(self.rng.uniform([batch]))
            for m in range(self.n_minibatches):
                rows = order[m * size:(m + 1) * size]
                with tf.GradientTape() as tape:
                    loss, entropy, kl = self._ppo_loss(
                        *(tf.gather(a, rows) for a in (inputs, actions, old_log_probs,
                                                        advantages, returns)))
                grads = tape.gradient(loss, self.meta_variables)
                self.meta_optimizer.apply_gradients(zip(grads, self.meta_variables))
        total = tf.reduce_sum(rewards, axis=1)
        return {"loss": loss, "total_reward": tf.reduce_mean(total), "entropy": entropy,
                "approx_kl": kl}

    # -- evaluation -------------------------------------------------------------------------------
    def play(self, tasks: BanditTasks, greedy: bool = False, seed: int = 0) -> dict:
        """Play every task of a test set (its uniforms fix the rewards, as for the baselines of
        :mod:`metalearn_helpers.bandits`); the policy samples its actions (seeded by ``seed``)
        unless ``greedy``, which takes the most probable arm.

        Returns numpy arrays: ``inputs`` ``(n_tasks, n_pulls, k_arms + 2)`` (what the GRU read
        at each pull: previous action one-hot, previous reward, done flag), ``actions`` and
        ``rewards`` ``(n_tasks, n_pulls)``. Notebook 09 reads the arm choices over a task."""
        if tasks.uniforms is None:
            raise ValueError("tasks must be a test set (BernoulliBandits.test_set) with uniforms.")
        self._check_tasks(tasks.arm_probabilities)
        if tasks.uniforms.shape[1] != self.n_pulls:
            raise ValueError(f"the test set has {tasks.uniforms.shape[1]} pulls per task, this "
                             f"learner plays n_pulls={self.n_pulls}.")
        uniforms = tf.constant(tasks.uniforms, tf.float32)
        if greedy:
            gumbel = tf.zeros_like(uniforms)
        else:
            u = tf.random.stateless_uniform(uniforms.shape, [seed, 1], 1e-20, 1.0)
            gumbel = -tf.math.log(-tf.math.log(u))
        inputs, actions, rewards = self._play(tf.constant(tasks.arm_probabilities, tf.float32),
                                              uniforms, gumbel)[:3]
        return {"inputs": inputs.numpy(), "actions": actions.numpy(),
                "rewards": rewards.numpy().astype(np.float64)}

    def total_rewards(self, tasks: BanditTasks, greedy: bool = False, seed: int = 0
                      ) -> np.ndarray:
        """Total reward per task ``(n_tasks,)`` on a test set (see :meth:`play`)."""
        return self.play(tasks, greedy, seed)["rewards"].sum(axis=1)

    def evaluate(self, tasks: BanditTasks, greedy: bool = False, seed: int = 0) -> ScoreWithCI:
        """Mean total reward ± 95 % CI over a test set (see :meth:`total_rewards`)."""
        return mean_confidence_interval(self.total_rewards(tasks, greedy, seed))


def load_rl2(name: str, weights_dir=None, **overrides) -> tuple[RL2, dict]:
    """The committed RL² policy ``weights/<name>.npz`` (e.g. ``"rl2_bandits_k5_n10"``), built with
    the settings of its run record, and that record (:mod:`metalearn_helpers.records`).
    ``overrides`` replace settings that do not shape the network (e.g. ``meta_lr``,
    ``anneal_iterations`` and ``seed`` for a second training phase)."""
    from . import records

    folder = records.WEIGHTS_DIR if weights_dir is None else Path(weights_dir)
    record = records.load_record(folder / f"{name}.json")
    settings = {k: v for k, v in record["hyperparameters"].items()
                if k not in ("meta_batch_size", "pulls_per_iteration")}
    shaping = sorted(set(overrides) & {"k_arms", "n_pulls", "units"})
    if shaping:
        raise ValueError(f"{', '.join(shaping)} of {name} are fixed by its weights; override "
                         f"only its training settings.")
    rl2 = RL2(**{**settings, "seed": record["seed"], **overrides})
    records.load_weights(rl2, folder / f"{name}.npz")
    return rl2, record
