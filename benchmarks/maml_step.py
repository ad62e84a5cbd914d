"""Seconds per MAML meta-step: our TensorFlow implementation vs a PyTorch reference, same run.

What is timed (MAML's Omniglot setting, Finn et al. 2017, arXiv 1703.03400, section 5.2 and its
code): Conv-4 with stride-2 3x3 convolutions, 64 filters, batch-statistics normalisation
(``metalearn_helpers.models.BatchStatNorm``), ReLU, global average pooling, ``Dense(5)``; 28x28x1
Omniglot images; 5-way 1-shot with ``--n-query`` query drawings per class (1, as the paper's code
trains); meta-batch 32; ``inner_lr`` 0.4; one inner step; Adam(1e-3) outer step.

Variants, all fed the same real Omniglot meta-batches (train split of ``split_characters(data,
"vinyals")``, rotations as classes):

- ``MAML tf.function``: ``MAML(...).train_step``, what the course uses (tasks looped with
  ``tf.range``);
- ``MAML XLA``: the same meta-step compiled with ``jit_compile=True`` (3 steps: it is slow);
- ``MAML eager``: the meta-step's Python function called without ``tf.function`` (2 steps: it is
  slow);
- ``PyTorch loop``: the reference, written the standard way: functional Conv-4, a Python loop
  over tasks, ``torch.autograd.grad(loss, params, create_graph=not first_order)``, the summed
  query losses divided by the meta-batch size, ``backward()``, ``Adam.step()``; with
  ``--threads`` threads (the baseline of every ratio) and with 1 thread;
- ``PyTorch vmap``: the strongest PyTorch reference a practitioner writes today: an
  ``nn.Module`` Conv-4 called with ``torch.func.functional_call``, the inner step by
  ``torch.func.grad``, the tasks of the meta-batch batched by ``torch.func.vmap``, and the
  meta-gradient by ``torch.func.grad_and_value`` of the mean query loss, then ``Adam.step()``;
- ``PyTorch vmap compiled``: the same gradient function under ``torch.compile`` (its
  compilation is the first call, reported apart; ``--skip-compile`` leaves it out);
- ``cand. fused norm``: CANDIDATE, not in ``metalearn_helpers``: ``MAML`` unchanged, on a Conv-4
  whose batch-statistics norm is TensorFlow's fused kernel (:class:`FusedBatchStatNorm`);
- ``cand. batched`` (``--batched-candidate``): CANDIDATE, all tasks of the meta-batch in one pass
  with per-task weights (im2col and batched matmuls, :class:`BatchedMAMLCandidate`); slower.

Each variant's first call (tracing / compiling / warm-up) is reported apart from its steady
state. Steady-state steps are interleaved (one step of every variant per round, the order rotated
each round) and summarised by medians, so load from other processes hits all variants alike;
besides wall time, each step's process CPU time (all threads) is recorded, which hardly depends
on other processes' load. Before timing, a cross-check copies one set of Keras weights into the
PyTorch parameters and compares meta-loss and meta-gradient on one meta-batch (``MAML``, both
candidates, PyTorch).

Run from the repository root (needs the ``bench`` extra: ``pip install -e .[bench]``, CPU torch)::

    METALEARN_OMNIGLOT_DIR=/path/to/omniglot .venv/bin/python benchmarks/maml_step.py
    .venv/bin/python benchmarks/maml_step.py --tf-intra-op 1      # the recommended threading
    .venv/bin/python benchmarks/maml_step.py --n-query 15 --skip-xla --skip-eager
    .venv/bin/python benchmarks/maml_step.py --tf-intra-op 1 --skip-xla --skip-eager --steps 5

The torch.func references are cross-checked against the PyTorch loop before timing (the
compiled one too with ``--check-compiled``); ``torch.compile`` takes minutes on 2 busy cores
(``--skip-compile`` leaves it out; ``--fresh-compile-cache`` times it cold, without
TorchInductor's on-disk cache).

``--record`` writes every row, the ratios, the cross-check's differences, the threads, the load
average before and after, the command, the machine and the git commit as the measurement record
``weights/maml_step_benchmark.json`` (``records.write_record``; notebook 10 reads it through
``costs.execution_modes`` and ``costs.pytorch_comparison``)::

    .venv/bin/python benchmarks/maml_step.py --tf-intra-op 1 --fresh-compile-cache --record
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# PyTorch's OpenMP threads spin while waiting by default; on a machine shared with other work
# (more runnable threads than cores) that made its 2-thread meta-step 4-15x slower than with 1
# thread. Passive waiting removes that pathology; set OMP_WAIT_POLICY yourself to override.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

N_WAY, K_SHOT, INNER_LR, IMAGE_SIZE = 5, 1, 0.4, 28
ROOT = Path(__file__).resolve().parents[1]
RECORD_PATH = ROOT / "weights" / "maml_step_benchmark.json"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--steps", type=int, default=10,
                        help="interleaved timing rounds = steady-state steps per variant "
                             "(XLA: at most 3, eager: 1)")
    parser.add_argument("--meta-batch-size", type=int, default=32)
    parser.add_argument("--n-query", type=int, default=1, help="query drawings per class")
    parser.add_argument("--threads", type=int, default=os.cpu_count(),
                        help="torch intra- and inter-op threads, TF inter-op threads, and TF "
                             "intra-op threads unless --tf-intra-op is given")
    parser.add_argument("--tf-intra-op", type=int, default=None,
                        help="TF intra-op threads (default: --threads); 1 lets the tasks' loop "
                             "run tasks in parallel instead of splitting tiny ops")
    parser.add_argument("--skip-eager", action="store_true")
    parser.add_argument("--skip-xla", action="store_true")
    parser.add_argument("--skip-candidate", action="store_true",
                        help="do not time the fused-norm candidate (it is still cross-checked)")
    parser.add_argument("--batched-candidate", action="store_true",
                        help="also time the all-tasks-batched candidate (slower; always "
                             "cross-checked)")
    parser.add_argument("--skip-compile", action="store_true",
                        help="do not time the torch.compile'd vmap reference (compiling takes "
                             "minutes on 2 busy cores)")
    parser.add_argument("--skip-check", action="store_true", help="skip the gradient cross-check")
    parser.add_argument("--check-compiled", action="store_true",
                        help="also cross-check the compiled torch.func reference (compiles it "
                             "twice more: minutes)")
    parser.add_argument("--fresh-compile-cache", action="store_true",
                        help="time torch.compile cold: TorchInductor caches in a new temporary "
                             "folder")
    parser.add_argument("--record", type=Path, nargs="?", const=RECORD_PATH, default=None,
                        help=f"write the measurement record (default path: {RECORD_PATH})")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.tf_intra_op is None:
        args.tf_intra_op = args.threads
    if args.record is not None and args.skip_check:
        parser.error("--record needs the cross-check: leave out --skip-check")
    for name in ("steps", "meta_batch_size", "n_query", "threads", "tf_intra_op"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


ARGS = parse_args() if __name__ == "__main__" else None
if ARGS is not None and ARGS.fresh_compile_cache:  # read when torch is imported
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="maml_step_inductor_")

import tensorflow as tf  # noqa: E402

if ARGS is not None:  # thread pools must be sized before TensorFlow's runtime starts
    tf.config.threading.set_intra_op_parallelism_threads(ARGS.tf_intra_op)
    tf.config.threading.set_inter_op_parallelism_threads(ARGS.threads)

tf.get_logger().setLevel("ERROR")  # one trace per MAML instance is expected, not "retracing"

import keras  # noqa: E402

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # pragma: no cover
    sys.exit("benchmarks/maml_step.py needs PyTorch (CPU build): pip install -e '.[bench]'")

from metalearn_helpers import costs, record_schema, records  # noqa: E402
from metalearn_helpers.episodes import OmniglotEpisodes, stack_episodes  # noqa: E402
from metalearn_helpers.maml import MAML  # noqa: E402
from metalearn_helpers.models import BatchStatNorm, conv4  # noqa: E402
from metalearn_helpers.omniglot import load_omniglot, split_characters  # noqa: E402

BN_EPSILON = 1e-3  # BatchStatNorm's default
KINK_MARGIN = 1e-5  # cross-check tasks keep every ReLU input this far from 0
XLA_STEPS = 3  # XLA and eager steps take seconds: time fewer of them


# -- data -------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def omniglot():
    return load_omniglot(verbose=False)


def omniglot_tasks(n_query):
    """5-way 1-shot episodes from the training characters of the Vinyals split, rotations as
    classes (MAML's Omniglot protocol)."""
    data = omniglot()
    return OmniglotEpisodes(data, split_characters(data, "vinyals")["train"], n_way=N_WAY,
                            k_shot=K_SHOT, n_query=n_query, rotations=True)


def omniglot_meta_batches(tasks, meta_batch_size, count, seed):
    """``count`` real meta-batches as numpy arrays (NHWC images, int32 labels)."""
    stream = tasks.batches(meta_batch_size, seed=seed)
    return [next(stream).arrays() for _ in range(count)]


def to_torch(batch):
    """NHWC float32 / int32 numpy -> NCHW float32 / int64 torch (what F.conv2d and
    F.cross_entropy expect)."""
    sx, sy, qx, qy = batch
    return (torch.from_numpy(np.ascontiguousarray(sx.transpose(0, 1, 4, 2, 3))),
            torch.from_numpy(sy.astype(np.int64)),
            torch.from_numpy(np.ascontiguousarray(qx.transpose(0, 1, 4, 2, 3))),
            torch.from_numpy(qy.astype(np.int64)))


def to_tf(batch):
    return tuple(tf.constant(a) for a in batch)


# -- the PyTorch reference --------------------------------------------------------------------
def keras_to_torch_params(model):
    """The Keras Conv-4's weights as torch leaf tensors in the same order.

    Conv kernels HWIO -> OIHW, the Dense kernel (in, out) -> (out, in); the rest as is."""
    params = []
    for v in model.trainable_variables:
        w = np.asarray(v.numpy())
        if w.ndim == 4:
            w = w.transpose(3, 2, 0, 1)
        elif w.ndim == 2:
            w = w.T
        params.append(torch.tensor(np.ascontiguousarray(w), requires_grad=True))
    return params


def torch_to_keras_layout(tensor):
    w = tensor.detach().numpy()
    if w.ndim == 4:
        return w.transpose(2, 3, 1, 0)
    if w.ndim == 2:
        return w.T
    return w


def _same_padding(size, kernel=3, stride=2):
    """TensorFlow's "SAME" padding (before, after): asymmetric (0, 1) for even sizes."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def torch_conv4(params, x, tf_padding=False, pre_relu=None):
    """Functional Conv-4: 4 x (conv3x3 stride 2, batch norm on batch statistics, ReLU), global
    average pool, linear. ``tf_padding=False`` pads 1 pixel on every side, the standard PyTorch
    way (same shapes and cost as Keras ``padding="same"``, but the windows sit one pixel
    earlier on even sizes); ``True`` pads exactly like TensorFlow, for the cross-check.
    ``pre_relu``: a list that receives each block's normalised activations (before the ReLU)."""
    h = x
    for block in range(4):
        w, b, gamma, beta = params[4 * block:4 * block + 4]
        if tf_padding:
            top, bottom = _same_padding(h.shape[-2])
            left, right = _same_padding(h.shape[-1])
            h = F.conv2d(F.pad(h, (left, right, top, bottom)), w, b, stride=2)
        else:
            h = F.conv2d(h, w, b, stride=2, padding=1)
        h = F.batch_norm(h, None, None, gamma, beta, training=True, eps=BN_EPSILON)
        if pre_relu is not None:
            pre_relu.append(h.detach())
        h = F.relu(h)
    return F.linear(h.mean(dim=(2, 3)), params[16], params[17])


def torch_meta_loss(params, batch, first_order, tf_padding=False):
    """Mean over tasks of the query loss after one inner SGD step on the support set."""
    sx, sy, qx, qy = batch
    total = 0.0
    for t in range(sx.shape[0]):
        loss = F.cross_entropy(torch_conv4(params, sx[t], tf_padding), sy[t])
        grads = torch.autograd.grad(loss, params, create_graph=not first_order)
        fast = [p - INNER_LR * g for p, g in zip(params, grads)]
        total = total + F.cross_entropy(torch_conv4(fast, qx[t], tf_padding), qy[t])
    return total / sx.shape[0]


class TorchMAML:
    def __init__(self, params, first_order, threads):
        self.params, self.first_order, self.threads = params, first_order, threads
        self.optimizer = torch.optim.Adam(self.params, lr=1e-3)

    def train_step(self, *batch):
        torch.set_num_threads(self.threads)
        self.optimizer.zero_grad()
        loss = torch_meta_loss(self.params, batch, self.first_order)
        loss.backward()
        self.optimizer.step()
        return float(loss.detach())


# -- the strongest PyTorch reference: torch.func, tasks batched with vmap ----------------------
class TorchBatchStatNorm(torch.nn.Module):
    """Batch norm on the batch's own statistics, written out (``BatchStatNorm``'s function).

    Not ``nn.BatchNorm2d(track_running_stats=False)``: under ``torch.func.vmap`` its second-order
    meta-gradient is wrong (3e-3 relative to the PyTorch loop's, in float64 too, torch 2.13 CPU),
    while ``torch.func.grad`` without ``vmap`` agrees with the loop exactly."""

    def __init__(self, channels):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(channels))
        self.bias = torch.nn.Parameter(torch.zeros(channels))

    def forward(self, h):
        mean = h.mean(dim=(0, 2, 3), keepdim=True)
        variance = (h - mean).square().mean(dim=(0, 2, 3), keepdim=True)
        return ((h - mean) * torch.rsqrt(variance + BN_EPSILON) * self.weight[:, None, None]
                + self.bias[:, None, None])


class TorchConv4(torch.nn.Module):
    """MAML's Conv-4 as an ``nn.Module`` (parameters in the Keras model's order), with
    :class:`TorchBatchStatNorm`."""

    def __init__(self):
        super().__init__()
        layers = []
        for block in range(4):
            layers += [torch.nn.Conv2d(1 if block == 0 else 64, 64, 3, stride=2, padding=1),
                       TorchBatchStatNorm(64), torch.nn.ReLU()]
        self.body = torch.nn.Sequential(*layers)
        self.head = torch.nn.Linear(64, N_WAY)

    def forward(self, x):
        return self.head(self.body(x).mean(dim=(2, 3)))


class TorchFuncMAML:
    """MAML with torch.func: ``vmap`` over tasks of (``grad`` inner step, query loss), the
    meta-gradient by ``grad_and_value``; ``compile=True`` puts that function under
    ``torch.compile``. ``params``: leaf tensors in the Keras order (see
    :func:`keras_to_torch_params`)."""

    def __init__(self, params, first_order, threads, compile=False):
        self.module, self.threads = TorchConv4(), threads
        self.names = [name for name, _ in self.module.named_parameters()]
        self.params = params
        self.optimizer = torch.optim.Adam(self.params, lr=1e-3)
        module = self.module

        def task_query_loss(weights, sx, sy, qx, qy):
            def support_loss(w):
                return F.cross_entropy(torch.func.functional_call(module, w, (sx,)), sy)

            grads = torch.func.grad(support_loss)(weights)
            fast = {n: weights[n] - INNER_LR * (grads[n].detach() if first_order else grads[n])
                    for n in weights}
            return F.cross_entropy(torch.func.functional_call(module, fast, (qx,)), qy)

        def meta_loss(weights, sx, sy, qx, qy):
            return torch.func.vmap(task_query_loss, in_dims=(None, 0, 0, 0, 0))(
                weights, sx, sy, qx, qy).mean()

        self.meta_gradient = torch.func.grad_and_value(meta_loss)
        if compile:
            self.meta_gradient = torch.compile(self.meta_gradient)

    def gradients(self, *batch):
        weights = {n: p.detach() for n, p in zip(self.names, self.params)}
        grads, loss = self.meta_gradient(weights, *batch)
        return [grads[n] for n in self.names], loss

    def train_step(self, *batch):
        torch.set_num_threads(self.threads)
        grads, loss = self.gradients(*batch)
        for p, g in zip(self.params, grads):
            p.grad = g
        self.optimizer.step()
        return float(loss)


def check_torch_func(model, batch, threads, compiled):
    """Meta-gradient of the torch.func references against the PyTorch loop (same padding, same
    weights, same meta-batch), both orders, in float64: in float32, batched and looped
    convolutions round differently and a ReLU input near 0 can flip (see
    :func:`kink_free_meta_batch`); in float64 that never happens. Pass: relative difference
    below 1e-9. Returns ``(ok, differences)``, one difference row per (order, reference) for
    the record."""
    def float64_params():
        return [p.detach().double().requires_grad_() for p in keras_to_torch_params(model)]

    batch = [t.double() if t.is_floating_point() else t for t in to_torch(batch)]
    differences = []
    for first_order in (False, True):
        params = float64_params()
        loop_loss = torch_meta_loss(params, batch, first_order)
        loop_grads = [g.numpy() for g in torch.autograd.grad(loop_loss, params)]
        for compile in (False, True) if compiled else (False,):
            reference = TorchFuncMAML(float64_params(), first_order, threads, compile)
            reference.module.double()
            grads, loss = reference.gradients(*batch)
            loss, loop_value = float(loss.detach()), float(loop_loss.detach())
            difference = max(relative_difference([g.numpy() for g in grads], loop_grads),
                             abs(loss - loop_value) / abs(loop_value))
            differences.append(difference_row(first_order, "PyTorch vmap" + (
                " compiled" if compile else "") + " (float64)", "PyTorch loop (float64)",
                difference))
            print(f"  {'1st' if first_order else '2nd'} order, PyTorch vmap"
                  f"{' compiled' if compile else ''} vs PyTorch loop: meta-loss and meta-gradient "
                  f"rel diff {difference:.1e}", flush=True)
    worst = max(d["relative_difference"] for d in differences)
    print(f"  => {'OK' if worst < 1e-9 else 'MISMATCH'} (float64, tolerance 1e-9)")
    return worst < 1e-9, differences


def difference_row(first_order, implementation, reference, difference):
    """One cross-check result as a row of the record's ``cross_check.differences``."""
    return {"order": "1st" if first_order else "2nd", "implementation": implementation,
            "reference": reference, "relative_difference": float(difference)}


# -- candidate 1: a fused batch-statistics norm -----------------------------------------------
class FusedBatchStatNorm(BatchStatNorm):
    """CANDIDATE, not part of metalearn_helpers: :class:`BatchStatNorm` computed by TensorFlow's
    fused kernel (``FusedBatchNormV3`` in training mode: the batch's own mean and biased
    variance, exactly BatchStatNorm's function).

    Forward and backward are one kernel each instead of about ten element-wise ops. Second
    order: TensorFlow differentiates ``FusedBatchNormGradV3`` by re-deriving the gradient with
    ordinary ops (``nn_fused_batch_norm_grad.py``); that expression computes the variance around
    ``stop_gradient(mean)`` too, but inside a *gradient*, where the dropped term is mathematically
    0, so second derivatives stay exact (third ones would not). The cross-check verifies it against
    PyTorch."""

    def call(self, x):
        y, _, _ = tf.compat.v1.nn.fused_batch_norm(x, self.gamma, self.beta,
                                                   epsilon=self.epsilon, is_training=True)
        return y

    def compute_output_shape(self, input_shape):
        return input_shape


def conv4_fused_norm(reference):
    """``conv4(N_WAY)`` (stride-2 blocks) with :class:`FusedBatchStatNorm`, same layer names
    and a copy of ``reference``'s weights."""
    layers = [keras.Input((IMAGE_SIZE, IMAGE_SIZE, 1))]
    for block in range(4):
        layers += [keras.layers.Conv2D(64, 3, strides=2, padding="same", name=f"conv{block + 1}"),
                   FusedBatchStatNorm(name=f"norm{block + 1}"), keras.layers.ReLU()]
    layers += [keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(N_WAY, name="logits")]
    model = keras.Sequential(layers, name="conv4")
    model.set_weights(reference.get_weights())
    return model


# -- candidate 2: all tasks in one pass (slower; opt-in) ---------------------------------------
class BatchedMAMLCandidate:
    """CANDIDATE, not part of metalearn_helpers: MAML on the stride-2 Conv-4 with every task of
    the meta-batch in one forward pass.

    The model's weights are broadcast to a leading task axis, so each task gets its own copy
    (identical before adaptation) and the inner gradient with respect to the copies is per task.
    A 3x3 stride-2 "SAME" convolution with per-task kernels is im2col by 9 strided slices of the
    padded input (differentiable to any order) followed by one ``tf.linalg.matmul`` batched over
    tasks. Grouped convolutions would do the same but have no gradient on CPU. Batch statistics
    are per task (reduced over images, height, width). The result is the same function as
    ``MAML(conv4(...))``, computed with 32x fewer, 32x larger ops; measured slower than the
    ``tf.range`` loop (the im2col copies and their gradients cost more than the op overhead
    saved), and only on par with it under XLA.
    """

    def __init__(self, model, inner_lr, first_order, meta_optimizer=None, jit_compile=False):
        self.model, self.inner_lr, self.first_order = model, float(inner_lr), first_order
        self.variables = list(model.trainable_variables)
        self.meta_optimizer = meta_optimizer or keras.optimizers.Adam(1e-3)
        self.meta_optimizer.build(self.variables)
        self.train_step = tf.function(self._train_step, jit_compile=jit_compile)

    @staticmethod
    def _conv(h, kernel, bias):
        """h: (tasks, images, H, W, C_in); kernel: (tasks, 3, 3, C_in, C_out)."""
        tasks, images, height, width, c_in = h.shape
        top, bottom = _same_padding(height)
        left, right = _same_padding(width)
        h = tf.reshape(h, (tasks * images, height, width, c_in))
        h = tf.pad(h, [[0, 0], [top, bottom], [left, right], [0, 0]])
        out_h, out_w = -(-height // 2), -(-width // 2)
        patches = tf.concat([h[:, dy:dy + 2 * out_h - 1:2, dx:dx + 2 * out_w - 1:2, :]
                             for dy in range(3) for dx in range(3)], axis=-1)
        patches = tf.reshape(patches, (tasks, images * out_h * out_w, 9 * c_in))
        c_out = kernel.shape[-1]
        out = tf.linalg.matmul(patches, tf.reshape(kernel, (tasks, 9 * c_in, c_out)))
        out = out + bias[:, None, :]
        return tf.reshape(out, (tasks, images, out_h, out_w, c_out))

    def forward(self, params, x):
        """Logits (tasks, images, n_way) for per-task ``params`` (each with a task axis)."""
        h = x
        for block in range(4):
            kernel, bias, gamma, beta = params[4 * block:4 * block + 4]
            h = self._conv(h, kernel, bias)
            mean = tf.reduce_mean(h, axis=(1, 2, 3), keepdims=True)
            variance = tf.reduce_mean(tf.square(h - mean), axis=(1, 2, 3), keepdims=True)
            h = ((h - mean) * tf.math.rsqrt(variance + BN_EPSILON) * gamma[:, None, None, None]
                 + beta[:, None, None, None])
            h = tf.nn.relu(h)
        h = tf.reduce_mean(h, axis=(2, 3))
        return tf.linalg.matmul(h, params[16]) + params[17][:, None, :]

    @staticmethod
    def _task_losses(y, logits):
        return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=tf.cast(y, tf.int32), logits=logits), axis=1)

    def meta_loss(self, support_x, support_y, query_x, query_y):
        tasks = support_x.shape[0]
        theta = [v.value for v in self.variables]
        copies = [tf.broadcast_to(p, (tasks, *p.shape)) for p in theta]
        with tf.GradientTape() as tape:
            tape.watch(copies)
            support_loss = tf.reduce_sum(self._task_losses(support_y,
                                                           self.forward(copies, support_x)))
        grads = tape.gradient(support_loss, copies)  # per task: the tasks are independent
        if self.first_order:
            grads = [tf.stop_gradient(g) for g in grads]
        fast = [c - self.inner_lr * g for c, g in zip(copies, grads)]
        query_logits = self.forward(fast, query_x)
        correct = tf.equal(tf.argmax(query_logits, -1, output_type=tf.int32),
                           tf.cast(query_y, tf.int32))
        return (tf.reduce_mean(self._task_losses(query_y, query_logits)),
                tf.reduce_mean(tf.cast(correct, tf.float32)))

    def _train_step(self, support_x, support_y, query_x, query_y):
        with tf.GradientTape() as tape:
            loss, accuracy = self.meta_loss(support_x, support_y, query_x, query_y)
        grads = tape.gradient(loss, [v.value for v in self.variables])
        self.meta_optimizer.apply(grads, self.variables)
        return {"loss": loss, "accuracy": accuracy}


# -- cross-check ------------------------------------------------------------------------------
class GradientRecorder:
    """Stands in for the meta-optimizer: stores the meta-gradient instead of applying it, so the
    cross-check runs the exact ``train_step`` that is timed."""

    def build(self, variables):
        self.grads = [tf.Variable(tf.zeros_like(v)) for v in variables]

    def apply(self, grads, variables):
        for slot, g in zip(self.grads, grads):
            slot.assign(g)


def relative_difference(a, b):
    a, b = np.concatenate([x.ravel() for x in a]), np.concatenate([x.ravel() for x in b])
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def kink_margin(params, episode):
    """Smallest |activation| entering a ReLU in one task's inner step: the support pass at the
    initial weights and the query pass at the adapted weights (PyTorch, TF-style padding)."""
    sx, sy, qx, qy = to_torch(tuple(a[None] for a in episode.arrays()))
    seen = []
    loss = F.cross_entropy(torch_conv4(params, sx[0], True, seen), sy[0])
    grads = torch.autograd.grad(loss, params)
    torch_conv4([p - INNER_LR * g for p, g in zip(params, grads)], qx[0], True, seen)
    return min(float(h.abs().min()) for h in seen)


def kink_free_meta_batch(model, tasks, meta_batch_size, seed, margin=KINK_MARGIN):
    """A meta-batch of real tasks none of whose ReLU inputs lies within ``margin`` of 0.

    Near the kink, float32 rounding (PyTorch's CPU batch norm folds the statistics into one
    scale and shift, ours computes ``(x - mean) * rsqrt(var + eps) * gamma + beta``) decides
    which side a value falls on,
    and one flipped unit changes a 1-shot task's inner gradient by a finite amount. Such tasks
    say nothing about whether the two implementations compute the same function."""
    params = keras_to_torch_params(model)
    rng = np.random.default_rng(seed + 1)
    kept, tried = [], 0
    while len(kept) < meta_batch_size:
        episode, tried = tasks.sample(rng), tried + 1
        if kink_margin(params, episode) > margin:
            kept.append(episode)
    return stack_episodes(kept).arrays(), tried


def compare(model, batch, label, candidates=True):
    """Meta-loss and meta-gradient of MAML.train_step (and the candidates) and of PyTorch
    (TF-style padding) from the same weights on the same meta-batch, first and second order."""
    names = [v.path for v in model.trainable_variables]
    kept = [i for i, n in enumerate(names) if not (n.startswith("conv4/conv") and
                                                    n.endswith("bias"))]
    results = {}
    for first_order in (False, True):
        params = keras_to_torch_params(model)
        torch_loss = torch_meta_loss(params, to_torch(batch), first_order, tf_padding=True)
        torch_grads = [torch_to_keras_layout(g)
                       for g in torch.autograd.grad(torch_loss, params)]
        torch_loss = float(torch_loss.detach())
        implementations = {
            "MAML.train_step": MAML(model, INNER_LR, first_order=first_order,
                                    meta_optimizer=GradientRecorder()),
            "fused-norm cand.": MAML(conv4_fused_norm(model), INNER_LR, first_order=first_order,
                                     meta_optimizer=GradientRecorder()),
            "batched cand.": BatchedMAMLCandidate(model, INNER_LR, first_order,
                                                  meta_optimizer=GradientRecorder()),
        }
        if not candidates:
            implementations = {"MAML.train_step": implementations["MAML.train_step"]}
        grads_of = {}
        for name, implementation in implementations.items():
            loss = float(implementation.train_step(*to_tf(batch))["loss"])
            grads = grads_of[name] = [g.numpy() for g in implementation.meta_optimizer.grads]
            whole = relative_difference(grads, torch_grads)
            worst = max(relative_difference([grads[i]], [torch_grads[i]]) for i in kept)
            loss_diff = abs(loss - torch_loss) / abs(torch_loss)
            results[first_order, name] = max(whole, loss_diff)
            print(f"  {label}, {'1st' if first_order else '2nd'} order, {name:<16} meta-loss "
                  f"{loss:.6f} vs {torch_loss:.6f} (rel {loss_diff:.1e}); meta-gradient rel "
                  f"diff {whole:.1e} (worst tensor {worst:.1e})")
        for name in list(implementations)[1:]:
            ours = relative_difference(grads_of[name], grads_of["MAML.train_step"])
            print(f"  {label}, {'1st' if first_order else '2nd'} order, {name} vs "
                  f"MAML.train_step: meta-gradient rel diff {ours:.1e}")
    return results


def cross_check(timing_batch, meta_batch_size, seed):
    """Same initial weights, same meta-batch, TensorFlow vs PyTorch. Pass: relative difference
    below 1e-4 on a 1-query meta-batch with no ReLU input near its kink; the timing meta-batch
    is also compared, for information.

    The check always uses 1 query per class (the timed code is the same for any ``--n-query``):
    with 15, a task's 80 images put some ReLU input within float32 resolution of 0 in nearly
    every task (32 of 3,599 sampled tasks kept a 1e-5 margin, and even among those, compared
    per task with a float64 PyTorch run, one task flipped in TensorFlow (7e-4) and another in
    PyTorch float32 (3e-3) while the other 30 agreed to 2e-5 in both).

    Returns ``(ok, model, differences, (kept, tried))``: the differences as record rows."""
    print("Cross-check: same initial weights and meta-batch, relative difference to PyTorch "
          "(|a-b|/|b| over all weights; the per-tensor worst leaves out the conv biases, whose "
          "true gradient is exactly 0 under batch norm)")
    keras.utils.set_random_seed(seed)
    model = conv4(N_WAY)
    batch, tried = kink_free_meta_batch(model, omniglot_tasks(1), meta_batch_size, seed)
    print(f"  kink-free 1-query meta-batch: {meta_batch_size} of {tried} sampled tasks have "
          f"every ReLU input at least {KINK_MARGIN:g} away from 0")
    results = compare(model, batch, "kink-free")
    ok = max(results.values()) < 1e-4
    print(f"  => {'OK' if ok else 'MISMATCH'}: largest relative difference "
          f"{max(results.values()):.1e} (tolerance 1e-4)")
    compare(model, timing_batch, "timing batch (not filtered, for information)",
            candidates=False)
    differences = [difference_row(first_order, name, "PyTorch loop, TF padding", value)
                   for (first_order, name), value in results.items()]
    return ok, model, differences, (meta_batch_size, tried)


# -- timing -----------------------------------------------------------------------------------
CPU_TIMES = {}  # (name, round) -> CPU seconds of this process (all threads) during the step


def timed(fn, *args, key=None):
    """Wall-clock seconds of one call; its process CPU time is stored under ``key``. CPU time
    hardly depends on other processes' load (wall time does), so it is reported too."""
    cpu, start = time.process_time(), time.perf_counter()
    out = fn(*args)
    if isinstance(out, dict):
        float(out["loss"])  # make sure the step has finished
    wall = time.perf_counter() - start
    if key is not None:
        CPU_TIMES[key] = time.process_time() - cpu
    return wall


def compiled_step(maml, **compile_options):
    """MAML's meta-step (the Python function behind ``MAML.train_step``) compiled again with
    other ``tf.function`` options, e.g. ``jit_compile=True`` for XLA."""
    return tf.function(functools.partial(MAML.train_step.python_function, maml),
                       **compile_options)


LEARNERS_TIMED = []  # a tf.function method holds its instance weakly: keep the instances alive


def kept(learner):
    LEARNERS_TIMED.append(learner)
    return learner


def build_variants(args, seed):
    """name -> (order, train_step, framework, max_steps). All start from the same weights."""
    variants = {}

    def fresh_model():
        keras.utils.set_random_seed(seed)
        return conv4(N_WAY)

    for first_order in (False, True):
        order = "1st" if first_order else "2nd"
        variants[f"PyTorch loop, {order}"] = (
            order, TorchMAML(keras_to_torch_params(fresh_model()), first_order,
                             args.threads).train_step, "torch", args.steps)
        variants[f"PyTorch vmap, {order}"] = (
            order, TorchFuncMAML(keras_to_torch_params(fresh_model()), first_order,
                                 args.threads).train_step, "torch", args.steps)
        if not args.skip_compile:
            variants[f"PyTorch vmap compiled, {order}"] = (
                order, TorchFuncMAML(keras_to_torch_params(fresh_model()), first_order,
                                     args.threads, compile=True).train_step, "torch",
                args.steps)
        if args.threads > 1:
            variants[f"PyTorch loop 1 thread, {order}"] = (
                order, TorchMAML(keras_to_torch_params(fresh_model()), first_order,
                                 1).train_step, "torch", args.steps)
        variants[f"MAML tf.function, {order}"] = (
            order, kept(MAML(fresh_model(), INNER_LR, first_order=first_order)).train_step,
            "tf", args.steps)
        if not args.skip_xla:
            variants[f"MAML XLA, {order}"] = (
                order, compiled_step(kept(MAML(fresh_model(), INNER_LR,
                                               first_order=first_order)),
                                     jit_compile=True), "tf", min(args.steps, XLA_STEPS))
        if not args.skip_candidate:
            variants[f"cand. fused norm, {order}"] = (
                order, kept(MAML(conv4_fused_norm(fresh_model()), INNER_LR,
                                 first_order=first_order)).train_step, "tf", args.steps)
        if args.batched_candidate:
            variants[f"cand. batched, {order}"] = (
                order,
                kept(BatchedMAMLCandidate(fresh_model(), INNER_LR, first_order)).train_step,
                "tf", args.steps)
            if not args.skip_xla:
                variants[f"cand. batched XLA, {order}"] = (
                    order, BatchedMAMLCandidate(fresh_model(), INNER_LR, first_order,
                                                jit_compile=True).train_step, "tf",
                    min(args.steps, XLA_STEPS))
    return variants


def result_rows(variants, first_call, times):
    """One row per variant (the record's ``rows``): medians of wall and CPU time, and the ratios
    against the PyTorch loop of the same order. Wall time: ratio of medians and median (min-max)
    of same-round ratios (robust to load that drifts between rounds). CPU time: process CPU
    seconds per step (all threads), ratio of medians."""
    rows = []
    for order in ("2nd", "1st"):
        reference_name = f"PyTorch loop, {order}"
        reference = times[reference_name]
        reference_median = statistics.median(reference.values())
        reference_cpu = statistics.median(CPU_TIMES[reference_name, r] for r in reference)
        for name in (n for n in variants if variants[n][0] == order):
            t = times[name]
            median = statistics.median(t.values())
            cpu = statistics.median(CPU_TIMES[name, r] for r in t)
            paired = [reference[r] / t[r] for r in t if r in reference]
            rows.append({
                "variant": name.rsplit(", ", 1)[0], "order": order,
                "framework": variants[name][2], "first_call_seconds": first_call[name],
                "median_step_ms": 1e3 * median, "cpu_ms_per_step": 1e3 * cpu, "steps": len(t),
                "step_ms": [1e3 * x for x in t.values()],
                "vs_reference_wall": reference_median / median,
                "vs_reference_cpu": reference_cpu / cpu,
                "same_round_median": statistics.median(paired) if paired else None,
                "same_round_min": min(paired) if paired else None,
                "same_round_max": max(paired) if paired else None})
    return rows


def print_table(rows):
    """The rows as a Markdown table, then ours against the fastest PyTorch variant."""
    print("\n| variant | first call (s) | median step (ms) | steps | PyTorch / this | "
          "same-round ratio: median (min-max) | CPU per step (ms) | PyTorch / this, CPU |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        per_round = ("not interleaved" if r["same_round_median"] is None else
                     f"{r['same_round_median']:.2f} ({r['same_round_min']:.2f}-"
                     f"{r['same_round_max']:.2f})")
        print(f"| {r['variant']}, {r['order']} | {r['first_call_seconds']:.1f} | "
              f"{r['median_step_ms']:.0f} | {r['steps']} | {r['vs_reference_wall']:.2f} | "
              f"{per_round} | {r['cpu_ms_per_step']:.0f} | {r['vs_reference_cpu']:.2f} |")
    for order in ("2nd", "1st"):
        v = costs.versus_fastest_pytorch(rows, order)
        print(f"{order} order: the fastest PyTorch variant is '{v['fastest_wall']}' in wall time "
              f"('{v['fastest_cpu']}' in CPU time); {costs.OURS} is {v['wall_ratio']:.2f}x as "
              f"fast in wall time (same-round median {v['same_round_wall_ratio']:.2f}x) and "
              f"{v['cpu_ratio']:.2f}x in CPU time" + (
                  f" (goal: {v['goal']}x, {'met' if v['met'] else 'not met'})."
                  if order == "2nd" else "."))
    print("\nRatios > 1: faster than the PyTorch reference of the same order (1st-order rows "
          "against PyTorch 1st-order). The machine may be shared: trust ratios more than "
          "absolute times; the spread of the same-round ratios shows how noisy this run was.")


def benchmark_record(args, rows, cross_check, threads, load, seconds):
    """The ``maml_step_benchmark`` measurement record (schema: ``records``)."""
    check_ok, differences, (kept_tasks, tried_tasks) = cross_check
    return {
        "kind": "measurement", "name": record_schema.MAML_STEP_BENCHMARK, "seed": args.seed,
        "protocol": (f"Omniglot {N_WAY}-way {K_SHOT}-shot, {args.n_query} query drawing(s) per "
                     f"class, Vinyals' training characters with rotations, meta-batch "
                     f"{args.meta_batch_size}, inner_lr {INNER_LR}, 1 inner step, Adam(1e-3); "
                     f"MAML's Conv-4 (stride 2, 64 filters, batch-statistics norm); the same 4 "
                     f"real meta-batches fed to every variant; first call apart; "
                     f"{args.steps} interleaved rounds (order rotated, XLA in at most the first "
                     f"{XLA_STEPS}, eager once after them); medians of wall and process CPU "
                     f"time per step; ratios against the PyTorch loop of the same order"),
        "command": "python benchmarks/maml_step.py " + " ".join(sys.argv[1:]),
        "n_way": N_WAY, "k_shot": K_SHOT, "n_query": args.n_query,
        "meta_batch_size": args.meta_batch_size, "inner_lr": INNER_LR, "steps": args.steps,
        "versions": {"python": platform.python_version(), "tensorflow": tf.__version__,
                     "keras": keras.__version__, "torch": torch.__version__,
                     "numpy": np.__version__},
        "threads": threads, "load_average": {"start": load[0], "end": load[1]},
        "run_seconds": seconds,
        "torch_compile_cache": "fresh" if args.fresh_compile_cache else "as found",
        "reference": "PyTorch loop", "rows": rows,
        "versus_fastest_pytorch": [costs.versus_fastest_pytorch(rows, order)
                                   for order in ("2nd", "1st")],
        "cross_check": {"ok": bool(check_ok), "tolerance": 1e-4, "tolerance_float64": 1e-9,
                        "kink_free_tasks": kept_tasks, "sampled_tasks": tried_tasks,
                        "differences": differences}}


def time_rounds(args, variants, feed):
    """First call of every variant, then ``args.steps`` interleaved rounds; eager after them.
    Returns ``(first_call, times)``: name -> seconds, name -> {round: seconds}."""
    first_call, times = {}, {name: {} for name in variants}
    print("\nFirst calls (tracing, compiling, warm-up):")
    for name, (_, step, framework, _) in variants.items():
        first_call[name] = timed(step, *feed[framework][0])
        print(f"  {name:<32} {first_call[name]:7.1f} s", flush=True)

    names = list(variants)
    print(f"\nTiming {args.steps} interleaved rounds (one step of each variant per round, "
          f"order rotated; XLA only in the first {XLA_STEPS}):", flush=True)
    for round_ in range(args.steps):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            _, fn, framework, max_steps = variants[name]
            if round_ < max_steps:
                batch = feed[framework][1 + round_ % (len(feed[framework]) - 1)]
                times[name][round_] = timed(fn, *batch, key=(name, round_))
        print(f"  round {round_ + 1}/{args.steps}: " + ", ".join(
            f"{n.split(',')[0]} {1e3 * times[n][round_]:.0f}" for n in names
            if round_ in times[n] and n.endswith("2nd")) + " ms (2nd order)", flush=True)

    if not args.skip_eager:
        print("Eager (MAML's meta-step without tf.function), after the interleaved rounds:")
        for first_order in (False, True):
            order = "1st" if first_order else "2nd"
            keras.utils.set_random_seed(args.seed)
            maml = MAML(conv4(N_WAY), INNER_LR, first_order=first_order)
            name = f"MAML eager, {order}"
            eager_step = functools.partial(MAML.train_step.python_function, maml)
            first_call[name] = timed(eager_step, *feed["tf"][0])
            times[name] = {None: timed(eager_step, *feed["tf"][1], key=(name, None))}
            variants[name] = (order, None, "tf", 1)
            print(f"  {name}: first {first_call[name]:.1f} s, second {times[name][None]:.1f} s",
                  flush=True)
    return first_call, times


def main(args):
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(args.threads)
    threads = {"tf_intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
               "tf_inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
               "torch_intra_op": torch.get_num_threads(),
               "torch_inter_op": torch.get_num_interop_threads(),
               "omp_wait_policy": os.environ["OMP_WAIT_POLICY"], "cpu_count": os.cpu_count()}
    load_start = os.getloadavg()[0]
    print(f"python {platform.python_version()}, tensorflow {tf.__version__}, keras "
          f"{keras.__version__}, torch {torch.__version__}, numpy {np.__version__}; "
          f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()})")
    print(f"threads: TF intra-op {threads['tf_intra_op']}, inter-op {threads['tf_inter_op']}; "
          f"torch intra-op {threads['torch_intra_op']}, inter-op {threads['torch_inter_op']}; "
          f"OMP_WAIT_POLICY={threads['omp_wait_policy']}; load average {load_start:.1f} at start")
    print(f"setting: Conv-4 (stride 2, 64 filters, batch-statistics norm), {N_WAY}-way "
          f"{K_SHOT}-shot, {args.n_query} query/class, meta-batch {args.meta_batch_size}, "
          f"inner_lr {INNER_LR}, 1 inner step, Adam(1e-3)\n")

    tasks = omniglot_tasks(args.n_query)
    batches = omniglot_meta_batches(tasks, args.meta_batch_size, 4, args.seed)
    feed = {"tf": [to_tf(b) for b in batches], "torch": [to_torch(b) for b in batches]}

    started, check = time.perf_counter(), (True, [], (0, 0))
    if not args.skip_check:
        check_ok, model, differences, tasks_kept = cross_check(batches[0], args.meta_batch_size,
                                                                args.seed)
        print("Cross-check of the torch.func references against the PyTorch loop, float64:")
        torch_func_ok, torch_func_differences = check_torch_func(
            model, batches[0], args.threads, args.check_compiled)
        check = (check_ok and torch_func_ok, differences + torch_func_differences, tasks_kept)
        print(f"  (cross-check took {time.perf_counter() - started:.0f} s)")

    variants = build_variants(args, args.seed)
    rows = result_rows(variants, *time_rounds(args, variants, feed))
    print_table(rows)
    seconds, load_end = time.perf_counter() - started, os.getloadavg()[0]
    print(f"Load average now {load_end:.1f}; whole run {seconds:.0f} s after loading data.")
    if args.record is not None:
        records.write_record(args.record, benchmark_record(args, rows, check, threads,
                                                           (load_start, load_end), seconds))
        print(f"Wrote {args.record}")
    if not check[0]:
        print("WARNING: the cross-check found a mismatch (see above).")
    return 0 if check[0] else 1


if __name__ == "__main__":
    sys.exit(main(ARGS))
