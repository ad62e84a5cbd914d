"""Interactive widgets (ipywidgets) for the notebooks. Each builder returns the widget so the
notebook displays it; the plotting itself lives in :mod:`metalearn_helpers.plots`."""

from __future__ import annotations

import ipywidgets as widgets


def sinusoid_task_sampler(n_tasks: int = 3, seed: int = 0, k_shot: int = 10,
                          max_seed: int = 99, max_k_shot: int = 50):
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
        An ``ipywidgets.interactive`` widget; display it (e.g. as a cell's last expression).
    """
    import matplotlib.pyplot as plt
    import numpy as np
    from IPython.display import display

    from .episodes import SinusoidTasks
    from .plots import plot_sinusoid_tasks

    def draw(seed, k_shot):
        rng = np.random.default_rng(seed)
        family = SinusoidTasks(k_shot=k_shot, n_query=1)
        fig = plot_sinusoid_tasks([family.sample(rng) for _ in range(n_tasks)])
        fig.axes[0].set_title(f"seed {seed}: {n_tasks} tasks, K = {k_shot} support points each")
        display(fig)
        plt.close(fig)  # shown once, by display, whatever the matplotlib backend

    return widgets.interactive(
        draw,
        seed=widgets.IntSlider(value=seed, min=0, max=max_seed, description="seed",
                               continuous_update=False),
        k_shot=widgets.IntSlider(value=k_shot, min=1, max=max_k_shot, description="K",
                                 continuous_update=False),
    )


def episode_explorer(data, seed: int = 0):
    """Sliders and switches that draw an Omniglot episode: n_way, k_shot, n_query, split
    (Vinyals train/val/test or Lake background/evaluation), rotations, within_alphabet, seed.

    Defined in notebook ``02_task_sampling``. An impossible combination (e.g. k_shot + n_query
    > 20, or more classes than the largest alphabet holds) shows the sampler's ``ValueError``
    message instead of a figure. Splits: Vinyals et al. 2016 (arXiv 1606.04080) and Lake et
    al. 2015.

    Returns:
        The ``ipywidgets.interactive`` widget (display it as a cell's last expression).
    """
    from IPython.display import display

    from .episodes import OmniglotEpisodes
    from .omniglot import split_characters
    from .plots import show_episode

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
            print(f"Impossible episode: {error}")
            return
        print(tasks)
        display(show_episode(episode, data))

    def slider(value, low, high, description):
        return widgets.IntSlider(value=value, min=low, max=high, description=description,
                                 continuous_update=False)

    return widgets.interactive(
        draw,
        n_way=slider(5, 2, 60, "n_way"),
        k_shot=slider(1, 1, 20, "k_shot"),
        n_query=slider(2, 0, 19, "n_query"),
        split=widgets.Dropdown(options=list(splits), value="vinyals train", description="split"),
        rotations=widgets.Checkbox(value=True, description="rotations"),
        within_alphabet=widgets.Checkbox(value=False, description="within_alphabet"),
        seed=widgets.IntText(value=seed, description="seed"),
    )
