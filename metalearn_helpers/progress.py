"""Progress bars that end as one plain line of text.

In a notebook, ``tqdm.auto`` draws an ipywidgets bar. What the notebook stores is that widget,
and wherever widgets do not run (GitHub, a static viewer, a freshly cloned and therefore
untrusted notebook) it shows as the text it had when it was displayed: ``0%| | 0/5000``, under a
run that finished. :class:`tqdm` here is ``tqdm.auto.tqdm`` with one difference: in a notebook,
when the bar closes it is replaced by a plain line with its final state, e.g.
``meta-training: 5000/5000, 112 s, loss=0.31``, and its widgets are closed. Outside a notebook it
is the ordinary terminal bar. Used by :func:`metalearn_helpers.training.meta_train`,
:func:`metalearn_helpers.evaluation.evaluate` and the notebooks' own loops (all notebooks).
"""

from __future__ import annotations

from tqdm.auto import tqdm as _auto_tqdm
from tqdm.notebook import tqdm_notebook


def final_line(bar) -> str:
    """The plain line a finished (or stopped) bar leaves: ``desc: n/total, elapsed s, postfix``."""
    state = bar.format_dict
    n, total = state["n"], state["total"]
    text = f"{state['prefix'] or 'progress'}: {n:g}" + (f"/{total:g}" if total else "")
    text += f", {state['elapsed']:.0f} s"
    if state.get("postfix"):
        text += f", {state['postfix']}"
    if total and n < total:
        text += " (stopped)"
    return text


class NotebookProgress(tqdm_notebook):
    """``tqdm.notebook.tqdm`` displayed through a display handle and replaced by
    :func:`final_line` when it closes (by an empty line if ``leave=False``)."""

    def __init__(self, *args, **kwargs):
        from IPython.display import display

        show = kwargs.pop("display", True)
        super().__init__(*args, display=False, **kwargs)
        self.handle = None
        if show and not self.disable and self.delay <= 0:
            self.handle = display(self.container, display_id=True)
            self.displayed = True

    def close(self):
        if self.disable:  # closed already, or never shown
            return
        super().close()
        if getattr(self, "handle", None) is not None:
            self.handle.update({"text/plain": final_line(self) if self.leave else ""}, raw=True)
            self.handle = None
            self.container.close()  # the bar's widget models leave the kernel and the frontend
            for child in self.container.children:
                child.close()


tqdm = NotebookProgress if issubclass(_auto_tqdm, tqdm_notebook) else _auto_tqdm
