"""Meta-training on several devices or machines with ``tf.distribute``.

Used by :func:`metalearn_helpers.training.meta_train` (its ``strategy`` argument) and by
``scripts/train_omniglot.py --strategy``; notebook ``10_efficiency_and_scale`` runs it on two
logical CPU devices. TensorFlow's guide: https://www.tensorflow.org/guide/distributed_training.

A meta-step under a strategy with ``R`` replicas and a meta-batch of ``M`` tasks:

- Every worker draws the same whole meta-batch (the episode stream is seeded) and each replica
  takes its share of the tasks: ``M // R``, one more for the first ``M % R`` replicas. An uneven
  split is allowed; ``M < R`` is a ``ValueError`` (a replica would have no task).
- Replica ``r`` computes the mean meta-gradient of its ``n_r`` tasks with the learner's
  ``meta_gradient`` and weights it by ``n_r / M``; the Keras optimizer sums the replicas'
  gradients (an all-reduce) before its one update, so the update uses the mean over all ``M``
  tasks, as on one device. The metrics are all-reduced the same way.
- Batch norm with running averages (``conv4(norm="running")``) built under the strategy's scope
  normalises with the statistics of the whole meta-batch (``synchronized``), as on one device;
  MAML's ``BatchStatNorm`` normalises each task on its own anyway.

The learner (its model and meta-optimizer) must be built under ``strategy.scope()``. Learners
whose ``train_step`` is :func:`~metalearn_helpers.learners.apply_meta_gradient` can be
distributed: MAML, first-order MAML, Meta-SGD, ProtoNet, Matching Networks and the fine-tuning
baseline. Others (Reptile, whose inner Adam state passes from one task to the next; the
Meta-Learner LSTM; the MANN) raise ``TypeError``.

Checkpoints hold one value per variable whatever the strategy, so a run saved under one strategy
resumes under another (one device, several GPUs, several machines).
"""

from __future__ import annotations

import itertools
import os

import numpy as np
import tensorflow as tf

from .checks import check_choice, check_int, check_positive
from .learners import Learner, variable_tensors

STRATEGIES = ("default", "mirrored", "multi-worker")
# Longest wait of a multi-worker collective (all-reduce) for the other workers, in seconds: a
# worker that died makes the others stop with an error after this instead of waiting forever.
# Generous, because a first step's tracing or a validation can keep one worker busy for minutes.
COLLECTIVE_TIMEOUT_SECONDS = 600.0


def make_strategy(name: str = "default",
                  timeout_seconds: float = COLLECTIVE_TIMEOUT_SECONDS) -> tf.distribute.Strategy:
    """The strategy called ``name``: ``"default"`` (one device: the GPU if there is one, else
    the CPU), ``"mirrored"`` (all GPUs of this machine, ``MirroredStrategy``) or
    ``"multi-worker"`` (``MultiWorkerMirroredStrategy`` over the machines named by ``TF_CONFIG``
    or, inside a Slurm job, by ``SlurmClusterResolver``; collectives time out after
    ``timeout_seconds``). Call it at the start of a program, before any other TensorFlow work."""
    check_choice("strategy", name, STRATEGIES)
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    check_positive("timeout_seconds", timeout_seconds)
    return tf.distribute.MultiWorkerMirroredStrategy(
        cluster_resolver=cluster_resolver(),
        communication_options=tf.distribute.experimental.CommunicationOptions(
            timeout_seconds=float(timeout_seconds)))


def cluster_resolver():
    """The cluster of a multi-worker run: from ``TF_CONFIG``, else from the Slurm job."""
    resolvers = tf.distribute.cluster_resolver
    if os.environ.get("TF_CONFIG"):
        return resolvers.TFConfigClusterResolver()
    if os.environ.get("SLURM_JOB_ID"):
        return resolvers.SlurmClusterResolver()
    raise ValueError(
        "the multi-worker strategy needs to know its cluster: set TF_CONFIG on every worker "
        "(e.g. {\"cluster\": {\"worker\": [\"host1:12345\", \"host2:12345\"]}, \"task\": "
        "{\"type\": \"worker\", \"index\": 0}}) or start the script with srun inside a Slurm job.")


def configure_cpu_threads(intra_op: int | None, inter_op: int | None) -> bool:
    """Set TensorFlow's CPU thread pools (before TensorFlow runs anything), but only when no GPU
    is visible: the one-thread-per-op advice of :class:`metalearn_helpers.maml.MAML` is for CPU
    training and would only slow a GPU run's input pipeline. ``None`` or 0 keeps TensorFlow's
    default. Returns whether the settings were applied."""
    if tf.config.list_physical_devices("GPU"):
        return False
    if intra_op:
        tf.config.threading.set_intra_op_parallelism_threads(int(intra_op))
    if inter_op:
        tf.config.threading.set_inter_op_parallelism_threads(int(inter_op))
    return True


def task_split(meta_batch_size: int, n_replicas: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of each replica's tasks in a meta-batch: contiguous shares as equal as
    possible (the first ``meta_batch_size % n_replicas`` replicas take one task more)."""
    check_int("meta_batch_size", meta_batch_size)
    check_int("n_replicas", n_replicas)
    if meta_batch_size < n_replicas:
        raise ValueError(
            f"meta_batch_size={meta_batch_size} is smaller than the strategy's {n_replicas} "
            f"replicas: every replica needs at least one task. Use a meta_batch_size of at least "
            f"{n_replicas} (a multiple of {n_replicas} keeps every replica equally busy), or "
            f"fewer devices.")
    sizes = [meta_batch_size // n_replicas + (r < meta_batch_size % n_replicas)
             for r in range(n_replicas)]
    bounds = np.cumsum([0] + sizes).tolist()
    return list(itertools.pairwise(bounds))


def _defined_by(cls, name: str):
    return next((c for c in cls.__mro__ if name in vars(c)), None)


def check_distributable(learner, strategy) -> None:
    """``TypeError`` unless ``learner``'s meta-update can be split across the replicas of
    ``strategy`` (a ``meta_gradient`` of its own, applied by its ``train_step``) and all its
    variables were created under ``strategy.scope()``."""
    if not isinstance(strategy, tf.distribute.Strategy):
        raise TypeError(f"strategy must be a tf.distribute.Strategy (e.g. make_strategy("
                        f"'mirrored')) or None, got {type(strategy).__name__}.")
    cls = type(learner)
    gradient_owner = _defined_by(cls, "meta_gradient")
    if gradient_owner in (None, Learner) or not issubclass(gradient_owner,
                                                           _defined_by(cls, "train_step")):
        raise TypeError(
            f"{cls.__name__} cannot be trained under a tf.distribute strategy: its train_step is "
            f"not one optimizer step on the mean of per-task gradients (it has no meta_gradient "
            f"of its own), so the tasks of a meta-batch cannot be split across replicas. MAML, "
            f"Meta-SGD, ProtoNet, MatchingNetwork and FineTuneBaseline can; train "
            f"{cls.__name__} with strategy=None.")
    variables = list(learner.meta_variables) + list(learner.meta_optimizer.variables)
    outside = [v.name for v in variables
               if not strategy.extended.variable_created_in_scope(variable_tensors([v])[0])]
    if outside:
        raise ValueError(
            f"{len(outside)} variables of the {cls.__name__} (e.g. {outside[0]!r}) were not "
            f"created under the strategy's scope: build the learner, its model and its "
            f"optimizer inside `with strategy.scope():`.")


class DistributedStep:
    """``learner.train_step`` under ``strategy``: ``step(support_x, support_y, query_x, query_y)
    -> metrics`` on a whole meta-batch of ``meta_batch_size`` tasks, split across the replicas
    (see the module docstring); the result equals one ``train_step`` up to rounding."""

    def __init__(self, learner, strategy, meta_batch_size: int):
        check_distributable(learner, strategy)
        self.learner, self.strategy = learner, strategy
        self.meta_batch_size = check_int("meta_batch_size", meta_batch_size)
        self.split = task_split(self.meta_batch_size, strategy.num_replicas_in_sync)
        self._step = tf.function(self._distributed_step)

    def __call__(self, support_x, support_y, query_x, query_y) -> dict:
        if support_x.shape[0] != self.meta_batch_size:
            raise ValueError(f"the meta-batch holds {support_x.shape[0]} tasks, but this step "
                             f"splits {self.meta_batch_size} across the replicas.")
        shares = [self.strategy.experimental_distribute_values_from_function(
            lambda context, array=array: array[slice(*self.split[
                context.replica_id_in_sync_group])])
            for array in (support_x, support_y, query_x, query_y)]
        try:
            return self._step(*shares)
        except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError,
                tf.errors.CancelledError) as error:
            raise RuntimeError(
                f"a meta-step's all-reduce failed: another worker of the multi-worker strategy "
                f"is lost (its process or machine stopped) or did not answer in time "
                f"(make_strategy's timeout_seconds). Nothing after the last checkpoint is kept; "
                f"start every worker again with the same command to resume from it. "
                f"TensorFlow said: {' '.join(error.message.split())[:300]}") from None

    def _distributed_step(self, *shares):
        metrics = self.strategy.run(self._replica_step, args=shares)
        return {k: self.strategy.experimental_local_results(v)[0] for k, v in metrics.items()}

    def _replica_step(self, support_x, support_y, query_x, query_y):
        n_tasks = tf.shape(support_x)[0]

        def weighted(value):  # this replica's share of the mean over the whole meta-batch
            return value * (tf.cast(n_tasks, value.dtype) / self.meta_batch_size)

        grads, variables, metrics = self.learner.meta_gradient(support_x, support_y, query_x,
                                                               query_y)
        # Keras' optimizer sums the replicas' gradients (an all-reduce), then updates once.
        self.learner.meta_optimizer.apply([weighted(g) for g in grads], variables)
        return tf.distribute.get_replica_context().all_reduce(
            tf.distribute.ReduceOp.SUM, {k: weighted(tf.cast(v, tf.float32))
                                         for k, v in metrics.items()})


# -- multi-worker bookkeeping ---------------------------------------------------------------------
def is_chief(strategy) -> bool:
    """Whether this process writes the run's files: always, except on the workers of a
    multi-worker strategy other than the chief (``task`` ``chief``, else ``worker`` 0)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    jobs = resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and "chief" not in jobs


def worker_run_dir(run_dir, strategy):
    """Where this process keeps its checkpoints: ``run_dir`` on the chief, and a folder of its
    own (``run_dir/worker-<i>``) on every other worker, so workers sharing a file system never
    write the same files; each resumes from its own copy (all hold the same weights)."""
    if run_dir is None or strategy is None or is_chief(strategy):
        return run_dir
    resolver = strategy.cluster_resolver
    return os.path.join(str(run_dir), f"{resolver.task_type}-{resolver.task_id}")


def check_same_step(strategy, step: int) -> None:
    """``ValueError`` unless every replica of ``strategy`` resumes from the same ``step`` (each
    worker of a multi-worker run restores its own checkpoint)."""
    steps = strategy.gather(strategy.experimental_distribute_values_from_function(
        lambda context: tf.constant([step], tf.int64)), axis=0).numpy()
    low, high = int(steps.min()), int(steps.max())
    if low != high:
        raise ValueError(
            f"the workers resume from different steps (between {low} and {high}): their "
            f"checkpoints differ. Give every worker the checkpoint of step {low} (or start a "
            f"new run_dir).")
