"""Smoke tests of the figures (metalearn_helpers.plots and .image_plots) on tiny synthetic inputs:
every public function draws without error and returns a matplotlib Figure. The notebooks check
how the figures look; these catch a broken helper in seconds."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.figure import Figure

from metalearn_helpers import image_plots, plots
from metalearn_helpers.episodes import Episode, SinusoidTasks
from metalearn_helpers.evaluation import mean_confidence_interval
from metalearn_helpers.omniglot import Omniglot
from metalearn_helpers.history import History

RNG = np.random.default_rng(0)
N_WAY, K_SHOT, N_QUERY = 3, 2, 2


def image_episode():
    labels = np.arange(N_WAY)
    return Episode(RNG.random((N_WAY * K_SHOT, 28, 28, 1), np.float32),
                   np.repeat(labels, K_SHOT), RNG.random((N_WAY * N_QUERY, 28, 28, 1), np.float32),
                   np.repeat(labels, N_QUERY), info=dict(classes=labels, rotations=labels % 4))


def omniglot():
    return Omniglot(RNG.integers(0, 256, (3, 20, 28, 28), dtype=np.uint8),
                    np.array(["Latin", "Greek", "Braille"]),
                    np.array(["character01", "character01", "character01"]),
                    np.array(["background", "background", "evaluation"]))


def history():
    return History(train=[dict(step=s, elapsed=s / 10, metrics=dict(loss=1 / s, accuracy=0.5))
                          for s in (10, 20, 30)],
                   validation=[dict(step=30, elapsed=3.0, metrics=dict(val_accuracy=0.6))])


def scores(*means):
    return [mean_confidence_interval([m - 0.01, m + 0.01]) for m in means]


def memory_trace(steps=6, slots=8, heads=2):
    labels = np.arange(steps) % N_WAY
    return dict(labels=labels, instance=labels // N_WAY + 1, correct=labels % 2 == 0,
                write_weights=RNG.random((steps, slots)),
                read_weights=RNG.random((steps, heads, slots)))


def figures():
    sinusoids = [SinusoidTasks(k_shot=5, n_query=5).sample(seed) for seed in range(2)]
    x = np.linspace(-5, 5, 20)
    episode, wrong = image_episode(), (image_episode().query_y + 1) % N_WAY
    yield "plot_sinusoid_tasks", lambda: plots.plot_sinusoid_tasks(sinusoids, show_query=True)
    yield "plot_sinusoid_fit", lambda: plots.plot_sinusoid_fit(sinusoids[0], x, {"0 steps": x})
    yield "plot_adaptation_curves", lambda: plots.plot_adaptation_curves(
        {"MAML": RNG.random((4, 3))}, reference={"oracle": 0.1})
    yield "plot_history", lambda: plots.plot_history(history())
    yield "plot_histories", lambda: plots.plot_histories({"a": history(), "b": history()})
    yield "plot_learned_learning_rates", lambda: plots.plot_learned_learning_rates(
        {"conv/kernel": RNG.random(9), "dense/bias": RNG.random(3)}, initial=0.4)
    yield "plot_embedding_projection", lambda: plots.plot_embedding_projection(
        RNG.random((6, 4)), episode.query_y, RNG.random((N_WAY, 4)))
    yield "plot_accuracy_curves", lambda: plots.plot_accuracy_curves(
        {"ProtoNet": ([1, 5], scores(0.9, 0.95))}, "shots", chance={"chance": 1 / N_WAY})
    yield "plot_gate_traces", lambda: plots.plot_gate_traces(
        dict(input=RNG.random((3, 2)), forget=RNG.random((3, 2)),
             variables=["conv/kernel", "conv/bias"]), losses=[1.0, 0.5, 0.2])
    yield "plot_accuracy_by_instance", lambda: plots.plot_accuracy_by_instance(
        {"MANN": dict(zip([1, 2], scores(0.4, 0.8)))}, paper={"paper": {1: 36.4, 2: 82.8}})
    yield "show_alphabets", lambda: image_plots.show_alphabets(omniglot())
    yield "show_drawers", lambda: image_plots.show_drawers(omniglot(), 0)
    yield "show_episode", lambda: image_plots.show_episode(episode, omniglot())
    yield "show_adaptation_steps", lambda: image_plots.show_adaptation_steps(
        episode, {0: wrong, 1: episode.query_y})
    yield "show_misclassified", lambda: image_plots.show_misclassified(episode, wrong)
    yield "show_metric_predictions", lambda: image_plots.show_metric_predictions(
        episode, RNG.random((N_WAY * N_QUERY, N_WAY)),
        attention=np.full((N_WAY * N_QUERY, N_WAY * K_SHOT), 1 / (N_WAY * K_SHOT)))
    yield "plot_memory_trace", lambda: image_plots.plot_memory_trace(memory_trace(), upto=4)


@pytest.mark.parametrize("name, draw", list(figures()), ids=[n for n, _ in figures()])
def test_every_figure_draws(name, draw):
    fig = draw()
    assert isinstance(fig, Figure)
    plt.close(fig)


def test_every_public_function_is_smoke_tested():
    public = {name for module in (plots, image_plots) for name in dir(module)
              if callable(getattr(module, name)) and getattr(getattr(module, name), "__module__",
                                                              "") == module.__name__
              and not name.startswith("_") and name[0].islower()}
    assert public - {name for name, _ in figures()} == {"project_2d"}  # not a figure


def test_no_correct_query_no_misclassified_figure():
    episode = image_episode()
    assert image_plots.show_misclassified(episode, episode.query_y) is None
