"""What a meta-training run logged: :class:`History`, written by
:func:`metalearn_helpers.training.meta_train` as ``history.json`` in its run folder and committed
beside trained weights as ``weights/<run>.history.json`` (learning curves in notebooks 03-09).
"""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np

HISTORY_FILE = "history.json"


@dataclasses.dataclass
class History:
    """What a meta-training run logged, continuous across resumes.

    ``train`` holds one record per log interval, the metrics of ``train_step`` averaged over the
    steps since the previous record: ``{"step": 500, "elapsed": 12.3, "metrics": {"loss": ...}}``
    (``step``: meta-updates done; ``elapsed``: seconds of meta-training so far, over all sessions).
    ``validation`` holds the results of ``validate()`` in the same form. ``config`` records the
    arguments of the run (seed, meta-batch size, ...).
    """

    train: list = dataclasses.field(default_factory=list)
    validation: list = dataclasses.field(default_factory=list)
    config: dict = dataclasses.field(default_factory=dict)

    @property
    def step(self) -> int:
        """The last step logged (0 for an empty history)."""
        return max((r["step"] for r in self.train + self.validation), default=0)

    @property
    def elapsed(self) -> float:
        """Seconds of meta-training logged so far."""
        return max((r["elapsed"] for r in self.train + self.validation), default=0.0)

    def series(self, name: str, validation: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """``(steps, values)`` of one metric, e.g. ``history.series("loss")`` for a plot."""
        records = [r for r in (self.validation if validation else self.train)
                   if name in r["metrics"]]
        return (np.array([r["step"] for r in records], dtype=np.int64),
                np.array([r["metrics"][name] for r in records], dtype=np.float64))

    def metric_names(self) -> list[str]:
        """Metric names in the order they first appear, training metrics first."""
        names = {}
        for record in self.train + self.validation:
            names.update(dict.fromkeys(record["metrics"]))
        return list(names)

    def truncate(self, step: int) -> History:
        """A copy without the records after ``step``."""
        return History([r for r in self.train if r["step"] <= step],
                       [r for r in self.validation if r["step"] <= step], dict(self.config))

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> History:
        data = json.loads(text)
        return cls(list(data.get("train", [])), list(data.get("validation", [])),
                   dict(data.get("config", {})))

    def save(self, path) -> None:
        """Write as JSON atomically (a crash never leaves half a file)."""
        tmp = f"{path}.tmp"
        with open(tmp, "w") as f:
            f.write(self.to_json())
        os.replace(tmp, path)

    @classmethod
    def load(cls, path) -> History:
        with open(path) as f:
            return cls.from_json(f.read())

    def plot(self, metrics=None, fig=None):
        """Learning curves; see :func:`metalearn_helpers.plots.plot_history`."""
        from .plots import plot_history  # imported here: a history draws only when asked

        return plot_history(self, metrics, fig=fig)
