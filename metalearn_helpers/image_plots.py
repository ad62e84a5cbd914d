"""Image grids used across the notebooks (matplotlib): Omniglot alphabets, drawers and episodes,
predictions shown on the drawings themselves, and the heat maps of a memory-augmented network's
reads and writes. Line and bar charts are in :mod:`metalearn_helpers.plots`. Each function names
the notebook that introduces it and returns the matplotlib ``Figure`` so notebooks can save or
tweak it."""

from __future__ import annotations

import numpy as np
from .checks import check_int


# Omniglot episodes: notebook 02_task_sampling ------------------------------------------------


def _short(text: str, width: int) -> str:
    text = text.replace("_", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


def show_alphabets(data, drawer: int = 0, ncols: int = 10, cell: float = 1.0):
    """One character of every Omniglot alphabet (its first character, drawn by ``drawer``).

    Defined in notebook ``02_task_sampling``. Background alphabets (Lake et al. 2015, used for
    training) have black titles, evaluation alphabets red ones.

    Args:
        data: loaded Omniglot (:func:`metalearn_helpers.omniglot.load_omniglot`).
        drawer: which of the 20 drawings to show (0-19).
        ncols: panels per row.
        cell: side of one panel in inches.

    Returns:
        The matplotlib ``Figure``.
    """
    from matplotlib.figure import Figure

    alphabets, first = np.unique(data.alphabets, return_index=True)
    order = np.lexsort((alphabets, data.splits[first] != "background"))  # background first
    nrows = -(-len(order) // ncols)
    fig = Figure(figsize=(ncols * cell, nrows * (cell + 0.25)))
    axes = fig.subplots(nrows, ncols).ravel()
    for ax in axes:
        ax.set_axis_off()
    for ax, i in zip(axes, order):
        ax.imshow(data.images[first[i], drawer], cmap="gray_r", vmin=0, vmax=255,
                  interpolation="nearest")
        color = "black" if data.splits[first[i]] == "background" else "tab:red"
        ax.set_title(_short(alphabets[i], 14), fontsize=7, color=color)
    fig.suptitle(f"{len(order)} alphabets: background (black) and evaluation (red)", fontsize=10)
    fig.tight_layout()
    return fig


def show_drawers(data, character: int, ncols: int = 10, cell: float = 0.8):
    """All 20 drawings of one Omniglot character, one per drawer.

    Defined in notebook ``02_task_sampling``: the variation between drawers is what a one-shot
    learner must generalise over (Lake et al. 2015).

    Args:
        data: loaded Omniglot.
        character: character index (row of ``data.images``), e.g.
            ``data.names.index("Latin/character07")``.

    Returns:
        The matplotlib ``Figure``.
    """
    from matplotlib.figure import Figure

    drawings = data.images[character]
    nrows = -(-len(drawings) // ncols)
    fig = Figure(figsize=(ncols * cell, nrows * (cell + 0.2) + 0.4))
    axes = fig.subplots(nrows, ncols).ravel()
    for ax in axes:
        ax.set_axis_off()
    for drawer, (ax, image) in enumerate(zip(axes, drawings)):
        ax.imshow(image, cmap="gray_r", vmin=0, vmax=255, interpolation="nearest")
        ax.set_title(f"drawer {drawer + 1}", fontsize=7)
    fig.suptitle(f"{data.names[character]} ({data.splits[character]}), drawn by "
                 f"{len(drawings)} people", fontsize=10)
    fig.tight_layout()
    return fig


def show_episode(episode, data=None, max_query: int | None = None, cell: float = 0.55,
                 title: str | None = None, max_images: int = 400):
    """Draw an N-way K-shot episode: one row per label, support drawings left, query right.

    Defined in notebook ``02_task_sampling``. Each row is labelled with its episode label and,
    when ``data`` is given, the alphabet, character and rotation behind it (``episode.info``
    from :class:`metalearn_helpers.episodes.OmniglotEpisodes`). Episodes as in Vinyals et al.
    2016 (arXiv 1606.04080) and Finn et al. 2017 (arXiv 1703.03400).

    Args:
        episode: an unbatched :class:`metalearn_helpers.episodes.Episode` of images.
        data: the Omniglot it came from (for the row labels); optional.
        max_query: show at most this many query drawings per label (default all).
        cell: side of one image in inches (shrunk automatically for big episodes).
        title: a title above the support/query headings; optional.
        max_images: draw at most this many images: a bigger episode shows its first labels
            only and says so in the title (thousands of small axes take minutes to draw).

    Returns:
        The matplotlib ``Figure``.
    """
    from matplotlib.figure import Figure

    check_int("max_images", max_images)
    all_labels = np.unique(episode.support_y)
    support = [episode.support_x[episode.support_y == y] for y in all_labels]
    query = [episode.query_x[episode.query_y == y][:max_query] for y in all_labels]
    k, q = max(len(s) for s in support), max((len(x) for x in query), default=0)
    labels = all_labels[:max(1, max_images // (k + q))]
    if len(labels) < len(all_labels):
        title = ((title + "\n") if title else "") + (
            f"first {len(labels)} of {len(all_labels)} labels shown (max_images={max_images})")
    gap = 0.35 if q else 0.0
    width_ratios = [1] * k + ([gap] + [1] * q if q else [])
    cell = min(cell, 11.0 / (k + q + gap), 10.0 / len(labels))
    fontsize = max(5.0, min(8.0, 14 * cell))
    margin = (0.27 if data is not None else 0.08) * fontsize  # inches for the row labels
    head = 0.45 + (0.16 * (title.count("\n") + 1) + 0.1 if title else 0.0)  # inches on top
    fig = Figure(figsize=(margin + cell * (k + q + gap), head + 0.05 + cell * len(labels)))
    axes = fig.subplots(len(labels), len(width_ratios), squeeze=False,
                        gridspec_kw=dict(width_ratios=width_ratios, wspace=0.06, hspace=0.06))
    fig.subplots_adjust(left=margin / fig.get_figwidth(), right=0.99, bottom=0.01,
                        top=1 - head / fig.get_figheight())
    if title:
        fig.suptitle(title, y=1 - 0.05 / fig.get_figheight(), va="top", fontsize=8)
    columns = [("support", j) for j in range(k)] + ([("gap", 0)] + [("query", j)
                                                                    for j in range(q)] if q else [])
    for row, label in enumerate(labels):
        for col, (part, j) in enumerate(columns):
            ax = axes[row, col]
            ax.set_xticks([])
            ax.set_yticks([])
            images = support[row] if part == "support" else query[row] if part == "query" else []
            if j >= len(images):
                ax.set_axis_off()
                continue
            ax.imshow(images[j][..., 0], cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
            color = "tab:blue" if part == "support" else "tab:orange"
            for spine in ax.spines.values():
                spine.set_color(color)
                spine.set_linewidth(1.5)
        text = f"label {label}"
        if data is not None and "classes" in episode.info:
            character = episode.info["classes"][row]
            turns = int(episode.info.get("rotations", np.zeros(len(labels), int))[row])
            text = (f"label {label}: {_short(data.alphabets[character], 17)}\n"
                    f"{data.characters[character]}, {90 * turns}°")
        axes[row, 0].set_ylabel(text, rotation=0, ha="right", va="center", fontsize=fontsize)
    blocks = [("support", f"K = {k}", 0, k - 1, "tab:blue")]
    if q:
        blocks.append(("query", f"Q = {q}", k + 1, k + q, "tab:orange"))
    for name, size, first, last, color in blocks:  # a two-line title centred over each block
        x = (axes[0, first].get_position().x0 + axes[0, last].get_position().x1) / 2
        fig.text(x, axes[0, first].get_position().y1 + 0.05 / fig.get_figheight(),
                 f"{name}\n{size}", ha="center", va="bottom", fontsize=8, color=color)
    return fig


# MAML and friends on Omniglot: notebook 04_maml_omniglot -------------------------------------


def show_adaptation_steps(episode, predictions, per_class: int = 2, cell: float = 0.5):
    """How a learner's predictions on an episode's query set change with inner steps.

    Defined in notebook ``04_maml_omniglot``. Columns are grouped by label. The top row shows
    (up to ``per_class`` of) each label's support drawings; below, one row per number of inner
    steps shows ``per_class`` query drawings of each label with the predicted label, framed green
    when right and red when wrong. Each row's label gives the accuracy on the *whole* query set.

    Args:
        episode: an unbatched Omniglot :class:`metalearn_helpers.episodes.Episode`.
        predictions: ``{inner steps: predicted labels of all queries}`` (aligned with
            ``episode.query_y``), in the order the rows are drawn.
        per_class: query (and at most support) drawings shown per label.
        cell: side of one image in inches.

    Returns:
        The matplotlib ``Figure``.
    """
    from matplotlib.figure import Figure

    labels = np.unique(episode.support_y)
    queries = [np.flatnonzero(episode.query_y == y)[:per_class] for y in labels]
    supports = [np.flatnonzero(episode.support_y == y)[:per_class] for y in labels]
    ncols, nrows = len(labels) * per_class, 1 + len(predictions)
    fig = Figure(figsize=(1.1 + cell * ncols, 0.5 + (cell + 0.15) * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False,
                        gridspec_kw=dict(wspace=0.08, hspace=0.35))
    fig.subplots_adjust(left=1.1 / fig.get_figwidth(), right=0.99, bottom=0.02,
                        top=1 - 0.45 / fig.get_figheight())  # room for a suptitle
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_axis_off()
    for i, label in enumerate(labels):
        for j, index in enumerate(supports[i]):
            ax = axes[0, i * per_class + j]
            ax.set_axis_on()
            ax.imshow(episode.support_x[index][..., 0], cmap="gray_r", vmin=0, vmax=1)
            ax.set_title(f"label {label}", fontsize=7, color="tab:blue", pad=2)
    axes[0, 0].set_ylabel("support", fontsize=8, rotation=0, ha="right", va="center")
    for row, (steps, predicted) in enumerate(predictions.items(), start=1):
        predicted = np.asarray(predicted)
        for i in range(len(labels)):
            for j, index in enumerate(queries[i]):
                ax = axes[row, i * per_class + j]
                ax.set_axis_on()
                ax.imshow(episode.query_x[index][..., 0], cmap="gray_r", vmin=0, vmax=1)
                right = predicted[index] == episode.query_y[index]
                color = "tab:green" if right else "tab:red"
                for spine in ax.spines.values():
                    spine.set_color(color)
                    spine.set_linewidth(2)
                ax.set_title(f"→ {predicted[index]}", fontsize=7, color=color, pad=2)
        accuracy = np.mean(predicted == episode.query_y)
        axes[row, 0].set_ylabel(f"{steps} step{'s' * (steps != 1)}\n{accuracy:.0%}", fontsize=8,
                                rotation=0, ha="right", va="center")
    return fig


# Metric-based few-shot learning: notebook 05_metric_based ------------------------------------


def _image_axis(ax, image, color=None, title=None, title_color="black"):
    ax.imshow(image[..., 0], cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_color(color or "lightgray")
        spine.set_linewidth(2 if color else 0.8)
    if title:
        ax.set_title(title, fontsize=7, color=title_color, pad=2)


def show_misclassified(episode, predictions, max_rows: int = 5, max_shots: int = 3,
                       cell: float = 0.6):
    """Misclassified queries of one episode next to the support drawings of the class they were
    given (the wrong prototype) and of their true class.

    Defined in notebook ``05_metric_based`` (Prototypical Networks, Snell et al. 2017, arXiv
    1703.05175; also used for a nearest neighbour in pixel space). One row per mistake, at most
    ``max_rows``, one per true class first: the query (red frame), up to ``max_shots`` support
    drawings of the predicted class, then of the true class (green).

    Args:
        episode: an unbatched Omniglot :class:`metalearn_helpers.episodes.Episode`.
        predictions: predicted labels of all queries, aligned with ``episode.query_y``.

    Returns:
        The matplotlib ``Figure``, or ``None`` if every query is right.
    """
    from matplotlib.figure import Figure

    predictions = np.asarray(predictions)
    wrong = np.flatnonzero(predictions != episode.query_y)
    if len(wrong) == 0:
        return None
    # one mistake per true class first, so that the rows show different characters
    first = np.unique(episode.query_y[wrong], return_index=True)[1]
    wrong = np.concatenate([wrong[np.sort(first)], np.delete(wrong, first)])[:max_rows]
    shots = min(max_shots, int(np.sum(episode.support_y == episode.support_y[0])))
    ncols = 1 + 2 * shots + 1  # query, predicted class, gap, true class
    fig = Figure(figsize=(max(3.2, cell * (ncols - 0.6) + 0.3), 0.6 + (cell + 0.2) * len(wrong)))
    axes = fig.subplots(len(wrong), ncols, squeeze=False,
                        gridspec_kw=dict(width_ratios=[1] * (1 + shots) + [0.4] + [1] * shots,
                                         wspace=0.08, hspace=0.45))
    fig.subplots_adjust(left=0.02, right=0.98, bottom=0.02, top=1 - 0.5 / fig.get_figheight())
    for row, index in enumerate(wrong):
        true, given = episode.query_y[index], predictions[index]
        _image_axis(axes[row, 0], episode.query_x[index], "tab:red", f"query ({true})")
        axes[row, 1 + shots].set_axis_off()
        for offset, label, color, name in [(1, given, "tab:red", "given"),
                                           (2 + shots, true, "tab:green", "true")]:
            drawings = episode.support_x[episode.support_y == label][:shots]
            for j in range(shots):
                ax = axes[row, offset + j]
                if j < len(drawings):
                    _image_axis(ax, drawings[j], None, f"{name}: {label}" if j == 0 else None,
                                color)
                else:
                    ax.set_axis_off()
    return fig


def show_metric_predictions(episode, distances, attention=None, max_rows: int = 8,
                            cell: float = 0.55):
    """Each query's nearest prototype and, optionally, its attention weights over the support set.

    Defined in notebook ``05_metric_based``: Prototypical Networks (Snell et al. 2017, arXiv
    1703.05175) predict the class of the nearest prototype; Matching Networks (Vinyals et al. 2016,
    arXiv 1606.04080) predict by attention over every support drawing. One row per query (at most
    ``max_rows``, spread over the classes): the query, framed green when its nearest prototype is
    its class and red otherwise; the first support drawing of that nearest class with the squared
    distance; and the attention weights over the support set as bars, the query's true class in
    orange.

    Args:
        episode: an unbatched Omniglot :class:`metalearn_helpers.episodes.Episode`.
        distances: squared distances ``(n_query, n_way)`` from each query to each prototype.
        attention: attention weights ``(n_query, n_support)`` (rows sum to 1), or ``None``.

    Returns:
        The matplotlib ``Figure``.
    """
    from matplotlib.figure import Figure

    distances = np.asarray(distances)
    n_query = len(episode.query_y)
    rows = np.unique(np.linspace(0, n_query - 1, min(max_rows, n_query)).round().astype(int))
    order = np.argsort(episode.support_y, kind="stable")
    bar_width = 0 if attention is None else 6.0
    fig = Figure(figsize=(2 * cell + 0.4 + bar_width, 0.4 + (cell + 0.15) * len(rows)))
    axes = fig.subplots(len(rows), 3 if attention is not None else 2, squeeze=False,
                        gridspec_kw=dict(width_ratios=[cell, cell] + ([bar_width] if bar_width
                                                                       else []),
                                         wspace=0.1, hspace=0.4))
    fig.subplots_adjust(left=0.02, right=0.98, bottom=0.04, top=1 - 0.35 / fig.get_figheight())
    for row, index in enumerate(rows):
        true, nearest = episode.query_y[index], int(np.argmin(distances[index]))
        color = "tab:green" if nearest == true else "tab:red"
        _image_axis(axes[row, 0], episode.query_x[index], color, f"query ({true})")
        support = episode.support_x[episode.support_y == nearest][0]
        _image_axis(axes[row, 1], support, None,
                    f"→ {nearest}, d²={distances[index, nearest]:.3g}", color)
        if attention is not None:
            ax = axes[row, 2]
            weights = np.asarray(attention)[index][order]
            colors = np.where(episode.support_y[order] == true, "tab:orange", "tab:gray")
            ax.bar(np.arange(len(weights)), weights, color=colors, width=0.9)
            ax.set_xlim(-0.7, len(weights) - 0.3)
            ax.set_ylim(0, max(1e-3, weights.max()) * 1.15)
            ax.set_xticks([])
            ax.tick_params(labelsize=6)
            ax.set_title(f"attention over the {len(weights)} support drawings (by class); "
                         f"orange: class {true}" if row == 0 else None, fontsize=7, pad=2)
    return fig


# Model-based meta-learning: notebook 06_model_based -------------------------------------------


def _used_slots(trace, extra: int = 2):
    """Slots ever written or read with weight > 1 %, plus a few, so the heat maps stay small."""
    weight = np.maximum(trace["write_weights"].max(0), trace["read_weights"].max((0, 1)))
    used = np.flatnonzero(weight > 0.01)
    return np.arange(min(len(weight), (used.max() + 1 if len(used) else 0) + extra))


def plot_memory_trace(trace, upto: int | None = None, axes=None):
    """Heat maps of one MANN episode: write weights and read weights (mean over heads), time
    steps down the rows, memory slots across (only the slots the episode uses), each panel
    coloured from 0 to its own largest weight (an untrained MANN reads almost uniformly, about
    1 / slots everywhere, which a common scale would show as black). The row labels
    give each step's true label and presentation (``3·2``: class 3, 2nd time); a green or red
    tick on the right says whether the prediction at that step was right.

    Defined in notebook ``06_model_based`` (MANN with least-recently-used access, Santoro et al.
    2016, arXiv 1605.06065, eqs. 3 and 7).

    Args:
        trace: what ``MemoryAugmentedNetwork.trace`` returns (with memory).
        upto: show only the first ``upto`` steps (the widget steps through an episode).
        axes: two matplotlib axes; default a new figure.

    Returns:
        The matplotlib ``Figure``.
    """
    from matplotlib.figure import Figure

    steps = len(trace["labels"]) if upto is None else int(upto)
    slots = _used_slots(trace)
    if axes is None:
        axes = Figure(figsize=(9, 0.9 + 0.11 * len(trace["labels"]))).subplots(1, 2, sharey=True)
    maps = {"write weights w^w_t (eq. 7)": trace["write_weights"][:, slots],
            "read weights w^r_t, mean over heads (eq. 3)": trace["read_weights"].mean(1)[:, slots]}
    for ax, (title, values) in zip(axes, maps.items()):
        shown = np.full_like(values, np.nan)
        shown[:steps] = values[:steps]
        image = ax.imshow(shown, aspect="auto", cmap="magma", vmin=0,
                          vmax=max(float(values.max()), 1e-6), interpolation="nearest")
        ax.figure.colorbar(image, ax=ax, fraction=0.05, pad=0.02)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("memory slot")
        for t in range(steps):
            ax.plot(len(slots) - 0.3, t, "|", ms=4,
                    color="tab:green" if trace["correct"][t] else "tab:red")
    labels = [f"{y}·{k}" for y, k in zip(trace["labels"], trace["instance"])]
    axes[0].set_yticks(np.arange(len(labels)), labels, fontsize=5)
    axes[0].set_ylabel("step t: true label · presentation")
    axes[0].figure.tight_layout()
    return axes[0].figure
