"""Interactive widgets (ipywidgets) for the notebooks. Each builder returns the widget so the
notebook displays it; the plotting itself lives in :mod:`metalearn_helpers.plots`."""

from __future__ import annotations

import ipywidgets as widgets


class Explorer(widgets.VBox):
    """A :func:`figure_widget`: a ``VBox`` whose display also carries a PNG of its initial view.

    A frontend that runs widgets (JupyterLab or Notebook with a kernel, or a trusted notebook
    with saved widget state) shows the live widget; GitHub, static viewers and untrusted
    notebooks fall back to the picture (``image/png``) and a one-line caption (``text/plain``)
    instead of the text repr ``VBox(children=(HBox(...``.
    """

    initial_view = None  # {"image/png": base64 str, "text/plain": caption}, set by figure_widget

    def _repr_mimebundle_(self, **kwargs):
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is not None and self.initial_view:
            bundle.update(self.initial_view)
        return bundle


def figure_widget(draw, **controls) -> Explorer:
    """Controls above a figure that ``draw(**values)`` redraws whenever a control changes.

    Like ``ipywidgets.interactive``, but ``draw`` *returns* a matplotlib ``Figure`` (or a
    message string) which is put into an ``Output`` widget from the kernel
    (``append_display_data``) instead of capturing what the function displays. Captured output
    makes nbclient (papermill, nbconvert) race with widget updates (nbclient issue #312): a
    notebook with ``interactive`` hung in 2 of about 10 headless runs on a loaded machine. Every
    widget of the course is built with this function. The first figure is also kept as a
    picture in the widget's display (see :class:`Explorer`), so a notebook read without a
    kernel shows the explorer's initial view.

    Args:
        draw: ``(**values) -> Figure | str``.
        **controls: ipywidgets controls, keyed by ``draw``'s argument names.

    Returns:
        An :class:`Explorer` (controls, then the figure); display it as a cell's last expression.
    """
    import matplotlib.pyplot as plt
    from IPython.core.pylabtools import print_figure

    out = widgets.Output()
    caption = "Interactive explorer (run the notebook to use its controls)"
    initial_view = {}

    def redraw(_change=None):
        result = draw(**{name: control.value for name, control in controls.items()})
        if not initial_view:
            initial_view["text/plain"] = caption + (f": {result}" if isinstance(result, str)
                                                    else "; picture: its initial view")
            if not isinstance(result, str):
                initial_view["image/png"] = print_figure(result, "png", base64=True)
        with out.hold_sync():  # one update: the old figure is replaced, not flashed away
            out.outputs = ()
            if isinstance(result, str):
                out.append_stdout(result + "\n")
            else:
                out.append_display_data(result)
                plt.close(result)  # shown once, in the widget, whatever the backend

    for control in controls.values():
        control.observe(redraw, names="value")
    redraw()
    explorer = Explorer([widgets.HBox(list(controls.values()),
                                      layout=widgets.Layout(flex_flow="row wrap")), out])
    explorer.initial_view = initial_view
    return explorer


def sinusoid_task_sampler(n_tasks: int = 3, seed: int = 0, k_shot: int = 10,
                          max_seed: int = 99, max_k_shot: int = 50) -> widgets.VBox:
    """Sliders for a seed and K that draw ``n_tasks`` sinusoid tasks with their K support points.

    Defined in notebook ``01_concepts``: moving the seed shows how much tasks of one family
    differ; moving K shows how many points it takes to pin one sinusoid down. Tasks: Finn et al.
    2017 (MAML, arXiv 1703.03400), sampled by :class:`metalearn_helpers.episodes.SinusoidTasks`
    and drawn by :func:`metalearn_helpers.plots.plot_sinusoid_tasks`.

    Args:
        n_tasks: tasks drawn per seed.
        seed, k_shot: initial slider values.
        max_seed, max_k_shot: slider ranges (K from 1).

    Returns:
        A :func:`figure_widget`; display it, e.g. as a cell's last expression.
    """
    import numpy as np

    from .episodes import SinusoidTasks
    from .plots import plot_sinusoid_tasks

    def draw(seed, k_shot):
        rng = np.random.default_rng(seed)
        family = SinusoidTasks(k_shot=k_shot, n_query=1)
        fig = plot_sinusoid_tasks([family.sample(rng) for _ in range(n_tasks)])
        fig.axes[0].set_title(f"seed {seed}: {n_tasks} tasks, K = {k_shot} support points each")
        return fig

    return figure_widget(
        draw,
        seed=widgets.IntSlider(value=seed, min=0, max=max_seed, description="seed",
                               continuous_update=False),
        k_shot=widgets.IntSlider(value=k_shot, min=1, max=max_k_shot, description="K",
                                 continuous_update=False))


def episode_explorer(data, seed: int = 0):
    """Sliders and switches that draw an Omniglot episode: n_way, k_shot, n_query, split
    (Vinyals train/val/test or Lake background/evaluation), rotations, within_alphabet, seed.

    Defined in notebook ``02_task_sampling``. An impossible combination (e.g. k_shot + n_query
    > 20, or more classes than the largest alphabet holds) shows the sampler's ``ValueError``
    message instead of a figure. Splits: Vinyals et al. 2016 (arXiv 1606.04080) and Lake et
    al. 2015.

    Returns:
        A :func:`figure_widget` (display it as a cell's last expression).
    """
    from .episodes import OmniglotEpisodes
    from .omniglot import split_characters
    from .image_plots import show_episode

    vinyals, lake = split_characters(data, "vinyals"), split_characters(data, "lake")
    splits = {"vinyals train": vinyals["train"], "vinyals val": vinyals["val"],
              "vinyals test": vinyals["test"], "lake background": lake["train"],
              "lake evaluation": lake["test"]}

    def draw(n_way, k_shot, n_query, split, rotations, within_alphabet, seed):
        try:
            tasks = OmniglotEpisodes(data, splits[split], n_way=n_way, k_shot=k_shot,
                                     n_query=n_query, rotations=rotations,
                                     within_alphabet=within_alphabet)
            episode = tasks.sample(seed)
        except ValueError as error:  # an impossible combination, or a negative seed
            return f"Impossible episode: {error}"
        return show_episode(episode, data, title=repr(tasks))

    def slider(value, low, high, description):
        return widgets.IntSlider(value=value, min=low, max=high, description=description,
                                 continuous_update=False)

    return figure_widget(
        draw,
        n_way=slider(5, 2, 60, "n_way"),
        k_shot=slider(1, 1, 20, "k_shot"),
        n_query=slider(2, 0, 19, "n_query"),
        split=widgets.Dropdown(options=list(splits), value="vinyals train", description="split"),
        rotations=widgets.Checkbox(value=True, description="rotations"),
        within_alphabet=widgets.Checkbox(value=False, description="within_alphabet"),
        seed=widgets.IntText(value=seed, description="seed"),
    )


def _x_positions(text: str):
    """The x positions typed into the sinusoid explorer (``"-4, -1.5; 2"``), clipped to the
    task's [-5, 5], as a ``(K, 1)`` float32 array; ValueError when a part is not a number."""
    import numpy as np

    values = [float(v) for v in text.replace(";", ",").split(",") if v.strip()]
    return np.clip(np.array(values, np.float32).reshape(-1, 1), -5.0, 5.0)


def maml_adaptation_explorer(learners: dict, seed: int = 0, k_shot: int = 5,
                             max_steps: int = 20, max_k_shot: int = 20) -> widgets.VBox:
    """Place or sample K points of a sinusoid task and watch several starting points adapt.

    Defined in notebook ``03_maml_sinusoid`` (MAML vs the pretrained baseline, Finn et al. 2017,
    arXiv 1703.03400, figure 2). Controls: K, the task's seed, the number of gradient steps, one
    step size per learner, "one half only" (sample the points from x in [0, 5], the other half of
    the curve is then pure extrapolation) and a text box of x positions that replaces the sampled
    points (e.g. ``-4, -1.5, 2``). Each panel shows the true function, the points, the
    prediction before adapting, after one step and after the chosen number of steps, and the
    MSE after adapting on a grid of 100 points over [-5, 5].

    Args:
        learners: ``{name: (algorithm, step_size)}``, e.g. ``{"MAML": (maml, 0.01),
            "pretrained": (baseline, 0.02)}``; an algorithm has ``model`` and ``forward``
            (:class:`metalearn_helpers.maml.MAML` and its subclasses).
        seed, k_shot: initial task seed and K.
        max_steps, max_k_shot: slider ranges.

    Returns:
        A :func:`figure_widget`; display it, e.g. as a cell's last expression.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    from .episodes import Episode, SinusoidTasks
    from .plots import plot_sinusoid_fit
    from .sinusoid import adaptation_outputs

    names = list(learners)
    grid = np.linspace(-5.0, 5.0, 100, dtype=np.float32)[:, None]

    def draw(k_shot, seed, steps, one_half, x_text, **step_sizes):
        task = SinusoidTasks(k_shot=k_shot, n_query=1,
                             x_range=(0.0, 5.0) if one_half else (-5.0, 5.0)).sample(seed)
        amplitude, phase = float(task.info["amplitude"]), float(task.info["phase"])
        try:
            support_x = _x_positions(x_text) if x_text.strip() else task.support_x
        except ValueError:
            return (f"Could not read the x positions {x_text!r}: write numbers separated by "
                    f"commas, e.g. -4, -1.5, 2")
        support_y = SinusoidTasks.function(support_x, amplitude, phase).astype(np.float32)
        truth = SinusoidTasks.function(grid, amplitude, phase)
        episode = Episode(support_x, support_y, grid, truth, info=task.info)
        fig, axes = plt.subplots(1, len(names), figsize=(4.6 * len(names), 3.7), sharey=True,
                                 squeeze=False)
        for i, (ax, name) in enumerate(zip(axes[0], names)):
            lr = step_sizes[f"lr_{i}"]
            outputs = adaptation_outputs(learners[name][0], support_x, support_y, grid, steps, lr)
            fits = {"pre-update": outputs[0]}
            fits.update({f"{s} step{'s' * (s > 1)}": outputs[s] for s in sorted({1, steps})
                         if 1 <= s <= steps})
            mse = float(np.mean((outputs[steps] - truth) ** 2))
            plot_sinusoid_fit(episode, grid, fits, ax=ax,
                              title=f"{name}, step size {lr:.3g}: MSE {mse:.2f}")
            ax.set_ylim(-6, 6)
        fig.suptitle(f"A = {amplitude:.2f}, phase = {phase:.2f}; {len(support_x)} points, "
                     f"{steps} gradient step{'s' * (steps != 1)}", fontsize=10)
        for ax in axes[0]:  # one legend below the panels, where it hides no point
            ax.get_legend().remove()
        handles, labels = axes[0, 0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize="small",
                   frameon=False)
        fig.tight_layout(rect=(0, 0.08, 1, 1))
        return fig

    controls = dict(
        k_shot=widgets.IntSlider(value=k_shot, min=1, max=max_k_shot, description="K",
                                 continuous_update=False),
        seed=widgets.IntSlider(value=seed, min=0, max=99, description="task seed",
                               continuous_update=False),
        steps=widgets.IntSlider(value=10, min=0, max=max_steps, description="steps",
                                continuous_update=False),
        one_half=widgets.Checkbox(value=False, description="points from x in [0, 5] only"),
        x_text=widgets.Text(value="", placeholder="e.g. -4, -1.5, 2 (empty: sample K points)",
                            description="x positions", continuous_update=False),
    )
    for i, name in enumerate(names):
        controls[f"lr_{i}"] = widgets.FloatLogSlider(
            value=learners[name][1], base=10, min=-3, max=-0.5, step=0.05,
            description=f"lr {name}"[:18], readout_format=".3g", continuous_update=False,
            style={"description_width": "initial"})
    return figure_widget(draw, **controls)


def metric_episode_explorer(data, protonet, matching=None, characters=None, seed: int = 0,
                            max_way: int = 20, max_shot: int = 10, max_rows: int = 8):
    """Pick a test episode and see each query's nearest prototype and its attention weights.

    Defined in notebook ``05_metric_based``. Controls: ways, shots, the episode's seed and
    "within one alphabet" (all classes from one alphabet, as in Lake et al. 2015, which is
    harder: similar-looking characters). Each row of the figure
    (:func:`metalearn_helpers.image_plots.show_metric_predictions`) is one query: its nearest
    prototype of the Prototypical Network (Snell et al. 2017, arXiv 1703.05175) and, when a Matching
    Network (Vinyals et al. 2016, arXiv 1606.04080) is given, its attention over the support set.
    The title gives both learners' accuracy on the episode's queries.

    Args:
        data: loaded Omniglot.
        protonet: a :class:`metalearn_helpers.protonet.ProtoNet` (its ``embedding`` is used).
        matching: a :class:`metalearn_helpers.matching.MatchingNetwork`, or ``None``.
        characters: characters to draw classes from (default: Vinyals' test split, with
            rotations as extra classes).
        seed: initial episode seed. max_way, max_shot: slider ranges.
        max_rows: queries shown (spread over the classes; all are scored).

    Returns:
        A :func:`figure_widget` (display it as a cell's last expression).
    """
    import numpy as np

    from .episodes import OmniglotEpisodes
    from .omniglot import split_characters
    from .image_plots import show_metric_predictions
    from .protonet import class_means, squared_distances

    characters = split_characters(data)["test"] if characters is None else characters

    def draw(n_way, k_shot, seed, within_alphabet):
        try:
            tasks = OmniglotEpisodes(data, characters, n_way=n_way, k_shot=k_shot, n_query=1,
                                     rotations=True, within_alphabet=within_alphabet)
            episode = tasks.sample(seed)
        except ValueError as error:
            return f"Impossible episode: {error}"
        embedded = protonet.embedding(np.concatenate([episode.support_x, episode.query_x]),
                                      training=False)
        support, queries = embedded[:len(episode.support_y)], embedded[len(episode.support_y):]
        distances = squared_distances(queries, class_means(support, episode.support_y, n_way))
        distances = distances.numpy()
        accuracy = np.mean(np.argmin(distances, -1) == episode.query_y)
        title = f"ProtoNet {accuracy:.0%}"
        attention = None
        if matching is not None:
            attention = matching.attention(*episode.arrays()[:3])
            predicted = np.argmax(matching.logits(*episode.arrays()[:3]), -1)
            title += f", Matching Net {np.mean(predicted == episode.query_y):.0%}"
        fig = show_metric_predictions(episode, distances, attention, max_rows=max_rows)
        fig.suptitle(f"{n_way}-way {k_shot}-shot, seed {seed}"
                     f"{', one alphabet' if within_alphabet else ''}: {title} of "
                     f"{len(episode.query_y)} queries", fontsize=8)
        return fig

    def slider(value, low, high, description):
        return widgets.IntSlider(value=value, min=low, max=high, description=description,
                                 continuous_update=False)

    return figure_widget(draw, n_way=slider(5, 2, max_way, "ways"),
                         k_shot=slider(1, 1, max_shot, "shots"),
                         seed=widgets.IntText(value=seed, description="seed"),
                         within_alphabet=widgets.Checkbox(value=False,
                                                          description="within one alphabet"))


def mann_episode_explorer(learners: dict, tasks, seed: int = 0, max_seed: int = 99):
    """Step through one episode of a MANN: what it sees, predicts, writes and reads.

    Defined in notebook ``06_model_based`` (memory-augmented network with least-recently-used
    access, Santoro et al. 2016, arXiv 1605.06065). Controls: the learner, the test episode and
    the time step ``t``. The left panel shows the drawing at step ``t`` with the label the
    network was given next to it (the previous step's, ``y_(t-1)``), its class probabilities
    and the true label; the right panels are :func:`metalearn_helpers.image_plots.plot_memory_trace`
    up to step ``t``: which slots it wrote into and read from so far. The episode is run once
    per (learner, episode) (one forward pass) and cached; moving ``t`` only redraws.

    Args:
        learners: ``{name: MemoryAugmentedNetwork}`` with memory.
        tasks: episodes of ``n_way`` classes x ``n_instances`` drawings, ``n_query=0``.
        seed, max_seed: initial episode and the slider's range.

    Returns:
        A :func:`figure_widget` (display it as a cell's last expression).
    """
    import numpy as np
    from matplotlib.figure import Figure

    from .image_plots import plot_memory_trace

    traces = {}
    names = list(learners)
    length = next(iter(learners.values())).sequence_length

    def draw(learner, episode_seed, t):
        key = (learner, episode_seed)
        if key not in traces:
            episode = tasks.sample(episode_seed)
            traces[key] = learners[learner].trace(episode.support_x, episode.support_y,
                                                  seed=episode_seed)
        trace = traces[key]
        step = t - 1
        fig = Figure(figsize=(12, 0.9 + 0.11 * length))
        grid = fig.add_gridspec(2, 3, width_ratios=[1, 1.6, 1.6], height_ratios=[1, 1])
        image_ax, bars_ax = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[1, 0])
        heat = [fig.add_subplot(grid[:, 1])]
        heat.append(fig.add_subplot(grid[:, 2], sharey=heat[0]))
        image_ax.imshow(trace["x"][step, ..., 0], cmap="gray_r")
        image_ax.set_axis_off()
        given = "none" if step == 0 else str(trace["labels"][step - 1])
        image_ax.set_title(f"step {t}: label given with it (y_t-1) = {given}\n"
                           f"true label {trace['labels'][step]}, presentation "
                           f"{trace['instance'][step]}", fontsize=8)
        probabilities = trace["probabilities"][step]
        colors = ["tab:green" if k == trace["labels"][step] else "tab:gray"
                  for k in range(len(probabilities))]
        bars_ax.bar(np.arange(len(probabilities)), probabilities, color=colors)
        bars_ax.set_ylim(0, 1)
        bars_ax.set_xticks(np.arange(len(probabilities)))
        bars_ax.set_title("predicted probabilities (green: true class)", fontsize=8)
        plot_memory_trace(trace, upto=t, axes=heat)
        right = np.mean(trace["correct"][:t])
        fig.suptitle(f"{learner}, test episode {episode_seed}: {right:.0%} right over steps "
                     f"1..{t}", fontsize=9)
        fig.tight_layout()
        return fig

    return figure_widget(
        draw,
        learner=widgets.Dropdown(options=names, value=names[0], description="learner"),
        episode_seed=widgets.IntSlider(value=seed, min=0, max=max_seed, description="episode",
                                       continuous_update=False),
        t=widgets.IntSlider(value=length, min=1, max=length, description="step t",
                            continuous_update=False))


def bandit_policy_explorer(policies: dict, arm_probabilities=(0.3, 0.5, 0.6, 0.7, 0.8),
                           seed: int = 0, max_seed: int = 99):
    """Set a bandit's arm probabilities and watch an RL² policy play it, next to Thompson sampling.

    Defined in notebook ``09_meta_rl`` (RL², Duan et al. 2016, arXiv 1611.02779). Controls: the
    policy (e.g. the ones trained for 10 and for 100 pulls), one slider per arm's success
    probability and the seed of the trial's luck. Both strategies play the same bandit with the
    same luck (common random numbers: arm ``a`` pays at pull ``t`` when ``u[t, a] < p[a]``): each
    panel marks the arm pulled at every pull (filled: it paid 1), the right panel counts the
    pulls per arm.

    Args:
        policies: ``{name: RL2}``, all with the same number of arms.
        arm_probabilities: the sliders' initial values, one per arm.
        seed, max_seed: the initial luck and the slider's range.

    Returns:
        A :func:`figure_widget` (display it as a cell's last expression).
    """
    import numpy as np
    from matplotlib.figure import Figure

    from .bandits import BanditTasks, play_trial, thompson_arms

    names = list(policies)
    k_arms = policies[names[0]].k_arms
    if len(arm_probabilities) != k_arms:
        raise ValueError(f"arm_probabilities must hold one value per arm ({k_arms}), got "
                         f"{len(arm_probabilities)}.")

    def draw(policy, seed, **probabilities):
        p = np.array([probabilities[f"p_{a}"] for a in range(k_arms)], np.float32)
        n_pulls = policies[policy].n_pulls
        luck = np.random.default_rng(seed).random((1, n_pulls, k_arms), dtype=np.float32)
        task = BanditTasks(p[None], luck)
        trials = {policy: policies[policy].play(task, seed=seed),
                  "Thompson sampling": play_trial(thompson_arms, task, seed=seed)}
        fig = Figure(figsize=(13, 3.2))
        axes = fig.subplots(1, 3, gridspec_kw={"width_ratios": [2, 2, 1]})
        pulls = np.arange(1, n_pulls + 1)
        for ax, (name, trial) in zip(axes, trials.items()):
            actions, rewards = trial["actions"][0], trial["rewards"][0]
            won = rewards > 0
            ax.scatter(pulls[won], actions[won] + 1, s=18, color="C0", label="paid 1")
            ax.scatter(pulls[~won], actions[~won] + 1, s=18, facecolors="none",
                       edgecolors="C3", label="paid 0")
            ax.set(yticks=np.arange(1, k_arms + 1), ylim=(0.5, k_arms + 0.5), xlabel="pull",
                   title=f"{name}: total {rewards.sum():.0f}")
        axes[0].set_ylabel("arm pulled")
        axes[0].legend(fontsize=7, loc="lower right")
        width = 0.4
        for i, (name, trial) in enumerate(trials.items()):
            counts = np.bincount(trial["actions"][0], minlength=k_arms)
            axes[2].barh(np.arange(1, k_arms + 1) + (i - 0.5) * width, counts, height=width,
                         label="RL²" if i == 0 else name)
        axes[2].set(yticks=np.arange(1, k_arms + 1),
                    yticklabels=[f"{a + 1}: p={v:.2f}" for a, v in enumerate(p)],
                    xlabel="pulls", title="pulls per arm")
        axes[2].legend(fontsize=7)
        fig.suptitle(f"best arm: {int(p.argmax()) + 1} (p = {p.max():.2f}); pulling it every "
                     f"time pays {n_pulls * p.max():.1f} on average", fontsize=9)
        fig.tight_layout()
        return fig

    sliders = {f"p_{a}": widgets.FloatSlider(value=float(v), min=0.0, max=1.0, step=0.05,
                                             description=f"p arm {a + 1}",
                                             continuous_update=False)
               for a, v in enumerate(arm_probabilities)}
    return figure_widget(
        draw,
        policy=widgets.Dropdown(options=names, value=names[-1], description="policy"),
        seed=widgets.IntSlider(value=seed, min=0, max=max_seed, description="luck seed",
                               continuous_update=False),
        **sliders)
