"""Charts used across the notebooks (matplotlib): sinusoid tasks and fits, adaptation curves,
learning curves (after training and live during it), accuracy curves, learned learning rates,
gate traces and 2-D projections of embeddings. Grids of images (Omniglot drawings, episodes,
memory heat maps) are in :mod:`metalearn_helpers.image_plots`. Each function names the notebook
that introduces it and returns the matplotlib ``Figure`` so notebooks can save or tweak it."""

from __future__ import annotations

import io
import math
import time
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np

if TYPE_CHECKING:  # plots never imports training at run time (training imports plots lazily)
    from .history import History


# Sinusoid regression tasks: notebook 01_concepts ---------------------------------------------


def plot_sinusoid_tasks(episodes, ax=None, x_range=(-5.0, 5.0), show_query=False):
    """Draw sinusoid tasks: each task's true curve and its support points, one colour per task.

    Defined in notebook ``01_concepts``. The tasks are those of Finn et al. 2017 (MAML, arXiv
    1703.03400, section 5.1), ``y = amplitude * sin(x - phase)``, as sampled by
    :class:`metalearn_helpers.episodes.SinusoidTasks`.

    Args:
        episodes: list of sinusoid :class:`~metalearn_helpers.episodes.Episode` (their ``info``
            holds ``"amplitude"`` and ``"phase"``).
        ax: matplotlib axes to draw on; default a new figure.
        x_range: interval on which the true curves are drawn.
        show_query: also draw the query points (hollow markers).

    Returns:
        The matplotlib ``Figure``.
    """
    from .episodes import SinusoidTasks

    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 3.5))
    x = np.linspace(*x_range, 200)
    for i, episode in enumerate(episodes):
        color = f"C{i % 10}"
        amplitude, phase = float(episode.info["amplitude"]), float(episode.info["phase"])
        ax.plot(x, SinusoidTasks.function(x, amplitude, phase), color=color, lw=1.5,
                label=f"A = {amplitude:.2f}, phase = {phase:.2f}")
        ax.scatter(episode.support_x[:, 0], episode.support_y[:, 0], color=color, s=28,
                   edgecolors="k", linewidths=0.5, zorder=3)
        if show_query:
            ax.scatter(episode.query_x[:, 0], episode.query_y[:, 0], facecolors="none",
                       edgecolors=color, s=18, zorder=2)
    ax.set(xlabel="x", ylabel="y", xlim=x_range)
    ax.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    return ax.figure


def plot_sinusoid_fit(episode, x_grid, predictions, ax=None, title=None):
    """One sinusoid task with its true curve, its support points and predicted curves, e.g. a
    model's predictions after 0, 1 and 10 adaptation steps (light to dark).

    Defined in notebook ``01_concepts`` (fast adaptation); the figure follows Finn et al. 2017
    (MAML, arXiv 1703.03400), figure 2.

    Args:
        episode: a sinusoid :class:`~metalearn_helpers.episodes.Episode`.
        x_grid: inputs, shape ``(n,)`` or ``(n, 1)``, at which the predictions were made.
        predictions: ``{label: outputs}``, outputs of shape ``(n,)`` or ``(n, 1)``, drawn in order.
        ax: matplotlib axes to draw on; default a new figure.
        title: axes title.

    Returns:
        The matplotlib ``Figure``.
    """
    from .episodes import SinusoidTasks

    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 3.2))
    x = np.ravel(x_grid)
    amplitude, phase = float(episode.info["amplitude"]), float(episode.info["phase"])
    ax.plot(x, SinusoidTasks.function(x, amplitude, phase), color="k", lw=2, alpha=0.35,
            label="true function")
    shades = plt.cm.Blues(np.linspace(0.45, 1.0, max(len(predictions), 1)))
    for shade, (label, y) in zip(shades, predictions.items()):
        ax.plot(x, np.ravel(y), color=shade, lw=1.6, label=label)
    ax.scatter(episode.support_x[:, 0], episode.support_y[:, 0], color="C3", s=28, zorder=3,
               label=f"{len(episode.support_x)} support points")
    ax.set(xlabel="x", ylabel="y", xlim=(x.min(), x.max()), title=title)
    ax.legend(fontsize="x-small", loc="lower left")
    return ax.figure


def plot_adaptation_curves(curves, ax=None, reference=None, ylabel="query MSE", logy=False):
    """Mean query loss against the number of adaptation steps, with a 95 % confidence band
    (:func:`metalearn_helpers.evaluation.mean_confidence_interval`), one line per starting point.

    Defined in notebook ``01_concepts`` (fast adaptation on sinusoid tasks, Finn et al. 2017,
    arXiv 1703.03400; Nichol et al. 2018, arXiv 1803.02999).

    Args:
        curves: ``{label: losses}``, ``losses`` of shape ``(n_tasks, n_steps + 1)``: each task's
            query loss after 0, 1, ..., n_steps adaptation steps.
        ax: matplotlib axes to draw on; default a new figure.
        reference: optional ``{label: value}`` drawn as dashed horizontal lines.
        ylabel: y-axis label.
        logy: logarithmic y axis.

    Returns:
        The matplotlib ``Figure``.
    """
    from .evaluation import mean_confidence_interval

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    for i, (label, losses) in enumerate(curves.items()):
        losses = np.asarray(losses)
        scores = [mean_confidence_interval(losses[:, s]) for s in range(losses.shape[1])]
        mean = np.array([s.mean for s in scores])
        half = np.array([s.ci95 for s in scores])
        steps = np.arange(losses.shape[1])
        ax.plot(steps, mean, "o-", color=f"C{i}", ms=3, label=label)
        ax.fill_between(steps, mean - half, mean + half, color=f"C{i}", alpha=0.2, lw=0)
    for j, (label, value) in enumerate((reference or {}).items()):
        ax.axhline(value, color=f"C{len(curves) + j}", ls="--", lw=1.2, label=label)
    ax.set(xlabel="adaptation steps on the support set", ylabel=ylabel)
    if logy:
        ax.set_yscale("log")
    ax.legend(fontsize="small")
    return ax.figure


# Learning curves of one run, after or during training: notebook 03_maml_sinusoid -------------


def plot_history(history: History, metrics=None, *, fig=None):
    """Learning curves of one run's :class:`~metalearn_helpers.history.History`: one panel per
    metric, the training curve (averaged per log interval) as a line and validation results as
    markers on the same axes. A validation metric goes on the panel of the training metric of the
    same name, or of its name without a ``val_`` prefix (``val_accuracy`` joins ``accuracy``).

    Defined in notebook ``03_maml_sinusoid`` (``history.plot()`` calls it); every notebook that
    meta-trains uses it.

    Args:
        history: what :func:`metalearn_helpers.training.meta_train` returned (or
            ``History.load(run_dir/history.json)``).
        metrics: a name or names of panels to draw (default: all, training metrics first).
        fig: a figure to clear and draw into (the live plot reuses one); default a new one.

    Returns the matplotlib ``Figure``. It is closed to pyplot, so a notebook shows it once when it
    is the cell's last expression (``display(fig)`` otherwise).
    """
    train_names = {k: None for r in history.train for k in r["metrics"]}
    panel_of = {v: v[4:] if v.startswith("val_") and v[4:] in train_names else v
                for r in history.validation for v in r["metrics"]}
    if metrics is None:
        panels = list({**train_names, **dict.fromkeys(panel_of.values())}) or ["loss"]
    else:
        panels = [metrics] if isinstance(metrics, str) else list(metrics)
    size = (min(4.0 * len(panels), 12.0), 3.0)
    if fig is None:
        fig = plt.figure(figsize=size, dpi=80)
        plt.close(fig)
    fig.clear()
    fig.set_size_inches(*size)
    for i, panel in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        steps, values = history.series(panel)
        curves = [values]
        if len(steps):
            ax.plot(steps, values, lw=1.2, label="meta-training")
        for name in [v for v, p in panel_of.items() if panel in (v, p)]:
            val_steps, val_values = history.series(name, validation=True)
            label = "validation" if name in (panel, f"val_{panel}") else f"validation {name}"
            ax.plot(val_steps, val_values, "o--", ms=4, lw=0.8, label=label)
            curves.append(val_values)
        every = np.concatenate(curves)
        if (panel in ("loss", "mse") and len(every) and np.all(every > 0)
                and every.max() > 20 * every.min()):
            ax.set_yscale("log")
        ax.set_xlabel("meta-training step")
        ax.set_title(panel)
        ax.grid(alpha=0.3)
        if len(curves) > 1:
            ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


class LivePlot:
    """Learning curves (:func:`plot_history`) redrawn in place in a notebook: one PNG output
    updated through a display handle (``clear_output`` would also wipe the progress bar), at most
    every ``min_interval`` seconds, and at most every ten drawing times so that drawing does not
    slow training noticeably.

    Defined in notebook ``03_maml_sinusoid``:
    :func:`metalearn_helpers.training.meta_train` creates one when called with
    ``live_plot=True`` and calls :meth:`update` at every log point.

    Args:
        metrics: the panels to draw, as in :func:`plot_history` (default all).
    """

    min_interval = 1.0  # seconds between redraws

    def __init__(self, metrics=None):
        from IPython.display import display

        self.metrics, self.fig, self.last_draw, self.interval = metrics, None, -math.inf, 0.0
        self.handle = display(display_id=True)

    def update(self, history: History, force: bool = False) -> None:
        """Redraw from ``history`` unless the last redraw is too recent (``force``: redraw)."""
        from IPython.display import Image

        now = time.perf_counter()
        if not force and now - self.last_draw < self.interval:
            return
        self.fig = plot_history(history, self.metrics, fig=self.fig)
        buffer = io.BytesIO()
        self.fig.savefig(buffer, format="png")
        self.handle.update(Image(data=buffer.getvalue()))
        self.last_draw = time.perf_counter()
        # Drawing must not slow training noticeably: wait ten drawing times between redraws.
        self.interval = max(self.min_interval, 10 * (self.last_draw - now))


# MAML and friends on Omniglot: notebook 04_maml_omniglot -------------------------------------


def plot_histories(histories, metric: str = "accuracy", ax=None, smooth: int = 1):
    """Learning curves of several runs on one axes: each run's training curve (a moving average
    over ``smooth`` log points) as a line, its validation results (``val_<metric>``) as markers.

    Defined in notebook ``04_maml_omniglot`` (MAML, first-order MAML, Meta-SGD and Reptile on
    Omniglot: arXiv 1703.03400, 1707.09835, 1803.02999).

    Args:
        histories: ``{label: History}`` (:class:`metalearn_helpers.history.History`).
        metric: the training metric to draw, e.g. ``"accuracy"`` or ``"loss"``.
        ax: matplotlib axes to draw on; default a new figure.
        smooth: width of the moving average, in log points (1: raw).

    Returns:
        The matplotlib ``Figure``.
    """
    from matplotlib.figure import Figure

    if ax is None:
        ax = Figure(figsize=(7, 3.2)).subplots()
    for i, (label, history) in enumerate(histories.items()):
        steps, values = history.series(metric)
        if smooth > 1 and len(values) >= smooth:
            values = np.convolve(values, np.ones(smooth) / smooth, mode="valid")
            steps = steps[smooth - 1:]
        ax.plot(steps, values, color=f"C{i}", lw=1, marker="." if len(steps) <= 10 else None,
                label=f"{label}, meta-training")
        val_steps, val_values = history.series(f"val_{metric}", validation=True)
        if len(val_steps):
            ax.plot(val_steps, val_values, "o--", color=f"C{i}", ms=3, lw=0.8,
                    label=f"{label}, validation")
    ax.set(xlabel="meta-training step", ylabel=metric)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return ax.figure


def plot_learned_learning_rates(named_rates, initial: float | None = None, ax=None):
    """Meta-SGD's learned per-parameter learning rates: one box per weight tensor (median,
    quartiles, 1st-99th percentile whiskers). The axis is linear, or symmetric-logarithmic when
    the rates span more than a factor of 20 or change sign.

    Defined in notebook ``04_maml_omniglot`` (Meta-SGD, Li et al. 2017, arXiv 1707.09835).

    Args:
        named_rates: ``{tensor name: array of learning rates}``, in network order.
        initial: the common starting value, drawn as a dashed line.
        ax: matplotlib axes to draw on; default a new figure.

    Returns:
        The matplotlib ``Figure``.
    """
    from matplotlib.figure import Figure

    names = list(named_rates)
    if ax is None:
        ax = Figure(figsize=(7, 0.8 + 0.22 * len(names))).subplots()
    ax.boxplot([np.ravel(named_rates[n]) for n in names], vert=False, whis=(1, 99),
               showfliers=False, widths=0.6)
    ax.set_yticks(np.arange(1, len(names) + 1), names, fontsize=7)
    ax.invert_yaxis()
    if initial is not None:
        ax.axvline(initial, color="C3", ls="--", lw=1)
    every = np.concatenate([np.ravel(r) for r in named_rates.values()])
    if every.min() <= 0 or every.max() > 20 * every.min():
        ax.set_xscale("symlog", linthresh=1e-2)
    ax.set_xlabel("learned inner learning rate (per parameter)"
                  + (f"; dashed: the initial {initial:g}" if initial is not None else ""))
    ax.grid(alpha=0.3, axis="x")
    return ax.figure


# Metric-based few-shot learning: notebook 05_metric_based ------------------------------------


def project_2d(points, fit=None):
    """Project ``points`` ``(n, dim)`` onto the two principal axes of ``fit`` (default the points
    themselves): principal component analysis with NumPy's SVD, no other dependency.

    Defined in notebook ``05_metric_based`` (embeddings of Prototypical Networks, Snell et al.
    2017, arXiv 1703.05175). Returns ``(projected (n, 2), explained)``, where ``explained`` is the
    fraction of ``fit``'s variance the two axes hold.
    """
    points = np.asarray(points, np.float64)
    fit = points if fit is None else np.asarray(fit, np.float64)
    mean = fit.mean(axis=0)
    _, singular, axes = np.linalg.svd(fit - mean, full_matrices=False)
    explained = float(np.sum(singular[:2] ** 2) / max(np.sum(singular ** 2), 1e-30))
    return (points - mean) @ axes[:2].T, explained


def plot_embedding_projection(query_embeddings, query_y, prototypes, ax=None, title=None):
    """Query embeddings (dots, coloured by true class) and class prototypes (stars) of one episode,
    projected to 2-D by :func:`project_2d` (fitted on queries and prototypes together).

    Defined in notebook ``05_metric_based``: a Prototypical Network (Snell et al. 2017, arXiv
    1703.05175) classifies a query by its nearest prototype, so well-separated clusters around
    their stars are what training should produce. Distances in the projection are only
    approximately those in the full embedding space.

    Returns:
        The matplotlib ``Figure``.
    """
    from matplotlib.figure import Figure

    if ax is None:
        ax = Figure(figsize=(4, 3.6)).subplots()
    query_y = np.asarray(query_y)
    both = np.concatenate([query_embeddings, prototypes])
    projected, explained = project_2d(both)
    queries, stars = projected[:len(query_y)], projected[len(query_y):]
    for label in range(len(prototypes)):
        color = f"C{label % 10}"
        ax.scatter(*queries[query_y == label].T, s=12, color=color, alpha=0.7)
        ax.scatter(*stars[label], s=180, marker="*", color=color, edgecolor="black", lw=0.8,
                   label=f"class {label}" if label < 10 else None)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel(f"PC 1 and 2 hold {explained:.0%} of the variance", fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    return ax.figure


def plot_accuracy_curves(curves, xlabel: str, ax=None, chance=None, title=None):
    """Accuracy (%) with 95 % confidence intervals against a setting (shots, training way, ...).

    Defined in notebook ``05_metric_based`` (Prototypical Networks, Snell et al. 2017, arXiv
    1703.05175: accuracy against shots and against the training way).

    Args:
        curves: ``{label: (xs, scores)}`` with ``scores`` a list of
            :class:`metalearn_helpers.evaluation.ScoreWithCI` (fractions).
        xlabel: the x axis' label.
        chance: ``{label: fraction}`` drawn as dotted lines, optional.

    Returns:
        The matplotlib ``Figure``.
    """
    from matplotlib.figure import Figure

    if ax is None:
        ax = Figure(figsize=(4.6, 3.2)).subplots()
    for i, (label, (xs, scores)) in enumerate(curves.items()):
        ax.errorbar(xs, [100 * s.mean for s in scores], yerr=[100 * s.ci95 for s in scores],
                    marker="o", ms=4, capsize=3, lw=1.2, color=f"C{i}", label=label)
    for j, (label, value) in enumerate((chance or {}).items()):
        ax.axhline(100 * value, ls=":", lw=1, color="gray")
        ax.text(ax.get_xlim()[0], 100 * value, f" {label}", fontsize=7, color="gray",
                va="bottom")
    ax.set(xlabel=xlabel, ylabel="test accuracy (%)")
    ax.set_xticks(sorted({x for xs, _ in curves.values() for x in xs}))
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    if title:
        ax.set_title(title, fontsize=9)
    return ax.figure


# Model-based meta-learning: notebook 06_model_based -------------------------------------------


def plot_gate_traces(gates, losses=None, ax=None, max_labels: int = 10):
    """The Meta-Learner LSTM's gates over its inner updates: the mean input gate ``i_t`` (the
    learning rate it chose) and forget gate ``f_t`` (the shrinkage of the parameters) of every
    weight tensor at every update, and optionally the support loss before each update.

    Defined in notebook ``06_model_based`` (Ravi & Larochelle 2017, "Optimization as a Model for
    Few-Shot Learning", ICLR, OpenReview rJY0-Kcll).

    Args:
        gates: what ``MetaLearnerLSTM.adapt(..., return_gates=True)`` returns as its second
            value: ``{"input": (steps, n_variables), "forget": ..., "variables": names}``.
        losses: support losses (one per update), drawn in a third panel when given.
        ax: a sequence of 2 (or 3 with ``losses``) axes to draw on; default a new figure.
        max_labels: tensors named in the legend (the others are drawn unlabelled).

    Returns:
        The matplotlib ``Figure``.
    """
    from matplotlib.figure import Figure

    panels = 2 + (losses is not None)
    axes = ax if ax is not None else Figure(figsize=(4.0 * panels, 3.2)).subplots(1, panels)
    input_gate, forget_gate = np.asarray(gates["input"]), np.asarray(gates["forget"])
    names = [str(n).split("/")[-2] + "/" + str(n).split("/")[-1] if "/" in str(n) else str(n)
             for n in gates["variables"]]
    steps = np.arange(1, len(input_gate) + 1)
    colors = plt.get_cmap("viridis")(np.linspace(0, 0.9, len(names)))
    for j, name in enumerate(names):
        label = name if j < max_labels else None
        axes[0].plot(steps, input_gate[:, j], "o-", ms=3, lw=1, color=colors[j], label=label)
        axes[1].plot(steps, forget_gate[:, j], "o-", ms=3, lw=1, color=colors[j])
    axes[0].set_title("input gate i_t: the learning rate", fontsize=9)
    axes[1].set_title("forget gate f_t: 1 = keep the parameters", fontsize=9)
    for a in axes[:2]:
        a.set_xlabel("inner update t")
        a.ticklabel_format(axis="y", useOffset=False)
        a.grid(alpha=0.3)
    axes[0].legend(fontsize=6, ncol=2)
    if losses is not None:
        axes[2].plot(np.arange(len(losses)), losses, "o-", ms=3, color="C3")
        axes[2].set_title("support loss before update t + 1", fontsize=9)
        axes[2].set_xlabel("inner updates done")
        axes[2].grid(alpha=0.3)
    axes[0].figure.tight_layout()
    return axes[0].figure


def plot_accuracy_by_instance(curves, paper=None, ax=None, n_way: int = 5):
    """Accuracy at the k-th presentation of a class (Santoro et al.'s Table 1 as curves): one
    line with 95 % CI bars per learner, the papers' numbers dashed, chance dotted.

    Defined in notebook ``06_model_based`` (MANN, Santoro et al. 2016, arXiv 1605.06065).

    Args:
        curves: ``{name: {k: ScoreWithCI}}`` (``MemoryAugmentedNetwork.accuracy_by_instance``).
        paper: ``{name: {k: accuracy in %}}``, drawn dashed.
        ax: matplotlib axes; default a new figure.
        n_way: classes per episode (chance is ``1 / n_way``).

    Returns:
        The matplotlib ``Figure``.
    """
    from matplotlib.figure import Figure

    ax = ax if ax is not None else Figure(figsize=(6, 3.4)).subplots()
    for i, (name, scores) in enumerate(curves.items()):
        ks = sorted(scores)
        ax.errorbar(ks, [100 * scores[k].mean for k in ks], [100 * scores[k].ci95 for k in ks],
                    marker="o", ms=4, capsize=3, color=f"C{i}", label=name)
    for i, (name, values) in enumerate((paper or {}).items()):
        ks = sorted(values)
        ax.plot(ks, [values[k] for k in ks], "s--", ms=3, lw=1, color=f"C{i + len(curves)}",
                label=name)
    ax.axhline(100 / n_way, color="gray", ls=":", lw=1, label="chance")
    ax.set_xlabel("presentation of the class in the episode (1st, 2nd, ...)")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return ax.figure
