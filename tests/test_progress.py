"""Progress bars end as one plain line (metalearn_helpers.progress) and explorers carry a
picture of their initial view (metalearn_helpers.widgets.figure_widget), so that committed
notebooks read well without a kernel."""

import io

import matplotlib.pyplot as plt
import numpy as np
import pytest
from tqdm.std import tqdm as terminal_tqdm

from metalearn_helpers import progress
from metalearn_helpers.episodes import Episode
from metalearn_helpers.image_plots import show_episode
from metalearn_helpers.widgets import figure_widget


def test_final_line_gives_the_final_state():
    bar = terminal_tqdm(total=5, desc="meta-training", file=io.StringIO())
    bar.update(5)
    bar.set_postfix(loss=0.25, refresh=False)
    assert progress.final_line(bar).startswith("meta-training: 5/5, 0 s, loss=0.25")
    bar.close()
    stopped = terminal_tqdm(total=5, desc="evaluating", file=io.StringIO())
    stopped.update(2)
    assert progress.final_line(stopped) == "evaluating: 2/5, 0 s (stopped)"
    stopped.close()


class FakeHandle:
    def __init__(self):
        self.updates = []

    def update(self, obj, raw=False):
        self.updates.append((obj, raw))


@pytest.mark.parametrize("leave, expected", [(True, "evaluating: 3/3, 0 s"), (False, "")])
def test_notebook_bar_is_replaced_by_its_final_line(monkeypatch, leave, expected):
    import IPython.display

    handle = FakeHandle()
    shown = []
    monkeypatch.setattr(IPython.display, "display",
                        lambda obj, display_id=None: shown.append(obj) or handle)
    bar = progress.NotebookProgress(range(3), desc="evaluating", leave=leave)
    assert list(bar) == [0, 1, 2] and shown == [bar.container]
    bar.close()
    assert handle.updates == [({"text/plain": expected}, True)]
    assert bar.container.comm is None  # its widget models are closed
    bar.close()  # a second close changes nothing
    assert len(handle.updates) == 1


def test_explorer_display_carries_a_picture_of_its_initial_view():
    def draw(n):
        fig, ax = plt.subplots(figsize=(2, 1.5))
        ax.plot(np.arange(n))
        return fig

    import ipywidgets

    bundle = figure_widget(draw, n=ipywidgets.IntSlider(value=3, min=1, max=5))._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["image/png"].startswith("iVBOR")  # base64 of a PNG
    assert "VBox(" not in bundle["text/plain"] and "initial view" in bundle["text/plain"]


def test_explorer_whose_initial_view_is_a_message_shows_the_message():
    import ipywidgets

    explorer = figure_widget(lambda n: f"Impossible episode: n = {n}",
                             n=ipywidgets.IntSlider(value=3))
    bundle = explorer._repr_mimebundle_()
    assert "image/png" not in bundle and bundle["text/plain"].endswith("Impossible episode: n = 3")


def test_show_episode_caps_huge_episodes_and_says_so():
    n_way, k_shot, n_query = 100, 1, 5
    images = np.zeros((n_way * (k_shot + n_query), 8, 8, 1), np.float32)
    labels = np.repeat(np.arange(n_way), k_shot + n_query)
    support = labels[::k_shot + n_query]
    episode = Episode(images[:n_way], support, images[n_way:], np.repeat(np.arange(n_way), n_query))
    fig = show_episode(episode, max_images=60, title="huge")
    rows = 60 // (k_shot + n_query)
    assert len(fig.axes) == rows * (k_shot + 1 + n_query)  # support, gap, query columns
    assert fig._suptitle.get_text() == f"huge\nfirst {rows} of {n_way} labels shown (max_images=60)"
    with pytest.raises(TypeError, match="max_images"):
        show_episode(episode, max_images=2.5)
