"""Lake et al.'s 400 official one-shot trials (``all_runs.zip``): find, verify, decode, score.

Defined in notebook ``05_metric_based`` (section 13); ``scripts/score_lake_trials.py`` scores the
committed embeddings on them and writes ``weights/lake_trials.json``.

The one-shot classification task of Lake, Salakhutdinov & Tenenbaum (2015, Science 350:1332),
as released in ``python/one-shot-classification/all_runs.zip`` of
https://github.com/brendenlake/omniglot (MIT licence): 20 runs, two in each of 10 of the 20
evaluation alphabets. A run holds one drawing of each of 20 characters of its alphabet
(``runNN/training/classNN.png``), 20 other drawings of the same characters
(``runNN/test/itemNN.png``) and the answers (``runNN/class_labels.txt``: test item, training
class). All training drawings of a run are by one drawer, all its test drawings by another.
Lake's ``demo_classification.py`` (same folder) scores a method by the percentage of a run's 20
test items whose most similar training drawing is of the wrong class, averaged over the 20 runs:
with 20 items per run, the error over all 400 trials.

The zip is looked for like Omniglot's zips (:mod:`metalearn_helpers.omniglot`): the ``root``
argument, then ``$METALEARN_OMNIGLOT_DIR``, then the cache folder's ``omniglot/``, else it is
downloaded from the official URL; its checksum must be the official release's.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import re
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .downloads import DataFiles, download_files, find_files
from .checks import check_int
from .episodes import Episode, Seed, TaskFamily, as_rng
from .omniglot import (DRAWINGS_PER_CHARACTER, ENV_OMNIGLOT_DIR, OFFICIAL_BASE_URL, Omniglot,
                       OmniglotError, decode_png)

N_RUNS = 20
N_WAY = 20  # characters per run, and test items per run
TRIALS_BASE_URL = OFFICIAL_BASE_URL + "one-shot-classification/"
TRIALS_FILES = DataFiles(
    name="Lake et al.'s one-shot trials", kind="the one-shot trials zip",
    checksums={"all_runs.zip": {
        "md5": {"e8996daecdf12afeeb4a53a179f06b19": "official release"},
        "sha256": {"437c1eeab0af8484112e1b4cc0f3d541ec727f7c47b9b202da738af9dfd6c325":
                   "official release"}}},
    env_var=ENV_OMNIGLOT_DIR, subdir="omniglot", base_url=TRIALS_BASE_URL,
    origin="python/one-shot-classification/ of the official release, "
           "https://github.com/brendenlake/omniglot", error=OmniglotError)
TRIALS_PROTOCOL = (
    "Lake et al.'s 400 official one-shot trials (all_runs.zip): 20 runs of 20-way 1-shot within "
    "one of 10 evaluation alphabets, one drawer for a run's 20 training drawings and another for "
    "its 20 test drawings; each test drawing gets the class of the training drawing its learner "
    "scores highest (Lake's demo_classification.py); error over the 400 trials with a 95 % "
    "Wilson interval over trials and a 95 % interval 1.96 s / sqrt(20) over the 20 per-run "
    "errors; images 28x28 as in training")
_LABEL_LINE = re.compile(
    r"^(run\d{2})/test/(item\d{2})\.png\s+(run\d{2})/training/(class\d{2})\.png$")


@dataclasses.dataclass(frozen=True)
class LakeTrials:
    """The 20 runs, decoded.

    Attributes:
        training: uint8 ``(20 runs, 20 classes, size, size)``, ink 255: ``classNN.png`` in order.
        test: uint8 ``(20 runs, 20 items, size, size)``: ``itemNN.png`` in order.
        answers: int ``(20 runs, 20 items)``: the training class (0-based) of each test item.
        runs: ``"run01"`` ... ``"run20"``.
    """

    training: np.ndarray
    test: np.ndarray
    answers: np.ndarray
    runs: tuple

    def episode(self, run: int) -> Episode:
        """Run ``run`` (0-based) as a 20-way 1-shot :class:`Episode`: support = the 20 training
        drawings (label = class), query = the 20 test items (label = answer), float32 in [0, 1]."""
        def images(a):
            return a[..., None].astype(np.float32) / 255.0
        return Episode(images(self.training[run]), np.arange(N_WAY, dtype=np.int32),
                       images(self.test[run]), self.answers[run].astype(np.int32),
                       info={"run": self.runs[run]})


def download_trials(dest: str | os.PathLike, base_url: str = TRIALS_BASE_URL) -> Path:
    """Download ``all_runs.zip`` from ``base_url`` into ``dest`` and verify its checksum (a file
    that fails is never moved into place). Returns ``dest``."""
    return download_files(TRIALS_FILES, dest, base_url)


def find_trials_zip(root: str | os.PathLike | None = None, download: bool = True) -> Path:
    """Locate (or download) and verify ``all_runs.zip``; see the module docstring for the order."""
    return find_files(TRIALS_FILES, root, download=download,
                      fetch=download_trials)["all_runs.zip"]


def _read_answers(archive: zipfile.ZipFile, run: str) -> np.ndarray:
    """``class_labels.txt`` of one run as the 0-based training class of item01 ... item20."""
    try:
        lines = archive.read(f"{run}/class_labels.txt").decode().split("\n")
    except KeyError:
        raise OmniglotError(f"{run}/class_labels.txt is missing from the trials zip.") from None
    pairs = {}
    for line in filter(None, (line.strip() for line in lines)):
        match = _LABEL_LINE.match(line)
        if not match or match.group(1) != run or match.group(3) != run:
            raise OmniglotError(f"{run}/class_labels.txt: cannot read the line {line!r} "
                                f"(expected '{run}/test/itemNN.png {run}/training/classNN.png').")
        pairs[match.group(2)] = int(match.group(4)[5:]) - 1
    if sorted(pairs) != [f"item{i:02d}" for i in range(1, N_WAY + 1)]:
        raise OmniglotError(f"{run}/class_labels.txt must pair item01 ... item{N_WAY} with a "
                            f"training class; it pairs {sorted(pairs)}.")
    return np.array([pairs[f"item{i:02d}"] for i in range(1, N_WAY + 1)])


def decode_trials(path: str | os.PathLike, image_size: int = 28) -> LakeTrials:
    """Decode ``all_runs.zip`` (resized and inverted as :func:`omniglot.decode_png` does)."""
    runs = tuple(f"run{r:02d}" for r in range(1, N_RUNS + 1))
    training, test, answers = [], [], []
    try:
        with zipfile.ZipFile(path) as archive:
            for run in runs:
                answers.append(_read_answers(archive, run))
                training.append([decode_png(archive.read(f"{run}/training/class{i:02d}.png"),
                                            image_size) for i in range(1, N_WAY + 1)])
                test.append([decode_png(archive.read(f"{run}/test/item{i:02d}.png"), image_size)
                             for i in range(1, N_WAY + 1)])
    except KeyError as error:
        raise OmniglotError(f"{path} lacks {error}: it is not Lake et al.'s all_runs.zip "
                            "(20 runs of 20 training and 20 test drawings).") from None
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise OmniglotError(f"{path} is corrupt ({error}); delete it and fetch it "
                            "again.") from error
    return LakeTrials(np.array(training), np.array(test), np.array(answers), runs)


def load_lake_trials(root: str | os.PathLike | None = None, image_size: int = 28,
                     download: bool = True) -> LakeTrials:
    """Find, verify and decode the 400 official trials (``root``: a folder holding
    ``all_runs.zip``; default ``$METALEARN_OMNIGLOT_DIR``, then the cache, then a download)."""
    check_int("image_size", image_size)
    return decode_trials(find_trials_zip(root, download=download), image_size)


# -- where each drawing comes from ---------------------------------------------------------------
def _pixel_key(image: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest()


def locate_trials(trials: LakeTrials, data: Omniglot) -> dict:
    """Find every drawing of the trials in Omniglot by its pixels (the trials' PNGs are
    re-encoded, so their bytes differ, but they decode to the same pixels):
    ``{"alphabet": (20,) alphabet of each run, "training_character"/"test_character": (20, 20)
    character index into ``data``, "training_drawer"/"test_drawer": (20, 20) drawer 0-19}``.
    Both must be decoded at the same size; a drawing found nowhere, or twice, raises
    :class:`OmniglotError`."""
    if trials.training.shape[-1] != data.images.shape[-1]:
        raise ValueError(f"trials ({trials.training.shape[-1]} px) and data "
                         f"({data.images.shape[-1]} px) must be decoded at the same size.")
    where = {}
    for c, drawings in enumerate(data.images):
        for d, image in enumerate(drawings):
            where.setdefault(_pixel_key(image), []).append((c, d))
    out = {}
    for part in ("training", "test"):
        found = [[where.get(_pixel_key(image), []) for image in run]
                 for run in getattr(trials, part)]
        if any(len(f) != 1 for run in found for f in run):
            raise OmniglotError(f"some {part} drawings of the trials are not exactly once in "
                                "Omniglot: the trials or the data set are not the official ones.")
        out[f"{part}_character"] = np.array([[f[0][0] for f in run] for run in found])
        out[f"{part}_drawer"] = np.array([[f[0][1] for f in run] for run in found])
    out["alphabet"] = data.alphabets[out["training_character"][:, 0]]
    return out


# -- scoring -------------------------------------------------------------------------------------
def trial_predictions(predict: Callable[[Episode], np.ndarray], trials: LakeTrials) -> np.ndarray:
    """``predict(episode)`` (the predicted class of each query) on every run: ``(20, 20)``."""
    return np.stack([np.asarray(predict(trials.episode(r))) for r in range(N_RUNS)])


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval (Wilson 1927) of a proportion ``successes / n``, as fractions."""
    p, z2 = successes / n, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def error_summary(wrong: np.ndarray) -> dict:
    """Error rate (%) of ``wrong`` (bool, ``(runs, trials)``) with two 95 % intervals: Wilson over
    the trials (as if independent) and ``1.96 * s / sqrt(runs)`` over the per-run errors (trials
    of one run share an alphabet and a drawer pair, so this one allows for that)."""
    wrong = np.asarray(wrong, dtype=bool)
    per_run = 100 * wrong.mean(axis=1)
    low, high = wilson_interval(int(wrong.sum()), wrong.size)
    return {"errors": int(wrong.sum()), "trials": int(wrong.size),
            "error": float(100 * wrong.mean()), "wilson95": [100 * low, 100 * high],
            "ci95_runs": float(1.96 * per_run.std(ddof=1) / math.sqrt(len(per_run))),
            "per_run_error": [float(e) for e in per_run]}


# -- Lake's demo method --------------------------------------------------------------------------
def ink_points(image: np.ndarray) -> np.ndarray:
    """Coordinates ``(n, 2)`` of the inked pixels (``image``: float in [0, 1], ink 1), centred
    on their mean (Lake's demo)."""
    points = np.argwhere(image > 0.5).astype(float)
    return points - points.mean(axis=0)


def modified_hausdorff_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Dubuisson & Jain (1994): the larger of the mean nearest-point distances from ``a`` to
    ``b`` and from ``b`` to ``a`` (point sets ``(n, 2)``), as in Lake's demo."""
    distances = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))
    return float(max(distances.min(axis=1).mean(), distances.min(axis=0).mean()))


def hausdorff_predict(episode: Episode) -> np.ndarray:
    """Lake's demo classifier: the training drawing at the smallest modified Hausdorff distance
    (use full-size drawings, ``image_size=105``; his demo reports 38.8 % errors)."""
    support = [ink_points(x[..., 0]) for x in episode.support_x]
    return np.array([np.argmin([modified_hausdorff_distance(ink_points(q[..., 0]), s)
                                for s in support]) for q in episode.query_x])


# -- what makes the official trials differ from random episodes ----------------------------------
class WithinAlphabetEpisodes(TaskFamily):
    """20-way 1-shot episodes within one group of characters (an alphabet, or one official
    run's characters), one query drawing per class, for telling apart what makes the official
    trials differ from the course's random within-alphabet episodes.

    An episode draws a group uniformly, then ``n_way`` of its characters. With
    ``drawer_pairs=True`` every support drawing is by one drawer and every query drawing by
    another (drawn per episode), as in the official runs; otherwise each class draws its two
    drawers independently, as :class:`~metalearn_helpers.episodes.OmniglotEpisodes` does.
    ``drawers``: the drawer indices (0-19) to draw from (the official runs use 0-7 only).
    ``pairs``: a fixed ``(support drawer, query drawer)`` for each group instead (e.g. each
    official run's own pair).
    """

    def __init__(self, data: Omniglot, groups, *, n_way: int = N_WAY, drawer_pairs: bool = False,
                 drawers=range(DRAWINGS_PER_CHARACTER), pairs=None):
        check_int("n_way", n_way)
        self.groups = [np.asarray(g) for g in groups]
        if not self.groups or min(len(g) for g in self.groups) < n_way:
            raise ValueError(f"every group needs at least n_way={n_way} characters.")
        self.drawers = np.asarray(drawers)
        known = set(range(DRAWINGS_PER_CHARACTER))
        if len(self.drawers) < 2 or not set(self.drawers.tolist()) <= known:
            raise ValueError(f"drawers must hold at least two of 0..{DRAWINGS_PER_CHARACTER - 1}, "
                             f"got {self.drawers.tolist()}.")
        if pairs is not None and np.shape(pairs) != (len(self.groups), 2):
            raise ValueError(f"pairs must hold one (support, query) drawer pair per group "
                             f"({len(self.groups)}), got shape {np.shape(pairs)}.")
        self.pairs = None if pairs is None else np.asarray(pairs)
        self.data, self.n_way, self.drawer_pairs = data, n_way, drawer_pairs

    def sample(self, seed: Seed = None) -> Episode:
        rng = as_rng(seed)
        g = rng.integers(len(self.groups))
        chosen = rng.choice(self.groups[g], size=self.n_way, replace=False)
        if self.pairs is not None:
            drawers = np.broadcast_to(self.pairs[g], (self.n_way, 2))
        elif self.drawer_pairs:
            drawers = np.broadcast_to(rng.choice(self.drawers, 2, replace=False), (self.n_way, 2))
        else:
            drawers = np.stack([rng.choice(self.drawers, 2, replace=False)
                                for _ in range(self.n_way)])
        images = self.data.images[chosen[:, None], drawers][..., None].astype(np.float32) / 255.0
        labels = np.arange(self.n_way, dtype=np.int32)
        return Episode(images[:, 0], labels, images[:, 1], labels,
                       info={"classes": chosen, "drawings": drawers})
