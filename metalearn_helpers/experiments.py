"""Omniglot few-shot experiments: the papers' settings, one way to train and evaluate, run records.

Defined in notebook ``04_maml_omniglot``; ``scripts/train_omniglot.py`` is the command-line
front end used for the long ``full`` runs whose weights and records are committed in ``weights/``.

Protocol (stated wherever a number is shown): Vinyals et al.'s split (1,028 training characters,
172 validation, 423 test; :func:`metalearn_helpers.omniglot.split_characters`), every character in
4 rotations as separate classes, 28x28 images; during meta-training as many query drawings per
class as support drawings (as MAML's code does); test accuracy over 600 episodes with 15 query
drawings per class, mean and 95 % confidence interval.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
from pathlib import Path

import keras
import numpy as np

from .baseline import ClassBatches, FineTuneBaseline
from .episodes import OmniglotEpisodes
from .evaluation import ScoreWithCI, evaluate
from .maml import MAML, MetaSGD
from .mann import MemoryAugmentedNetwork
from .matching import MatchingNetwork
from .meta_lstm import MetaLearnerLSTM
from .models import conv4
from .omniglot import split_characters
from .protonet import ProtoNet
from .reptile import Reptile
from .training import meta_train

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"

# Hyperparameters of each paper's Omniglot experiments. ``model(n_way)`` builds the network
# (default: MAML's stride-2 Conv-4 with an ``n_way`` head). Episodic training uses ``train_way``
# classes (default: the test way) and ``train_shots`` drawings per class, support included
# (default ``2 * k_shot``: as many query drawings as support drawings, as MAML's code does), or
# ``train_query`` query drawings per class. Test accuracy is reported for ``test_ways``
# (default: the way trained). Model-based learners (notebook 06) add: ``k_shots``, the shots the
# setting is defined for (the first is the default), ``shot_kwargs``, constructor arguments that
# depend on the shot, ``model=None`` for a learner that builds its own network from
# ``(n_way, n_instances=k_shot)``, ``val_query``, query drawings per class of the validation
# episodes (default ``k_shot``), and ``evaluation="by_instance"`` for sequence learners scored on
# the k-th presentation of a class (:func:`evaluate_by_instance`) instead of on 15 queries.
# ``paper_test_query`` (MAML family): the query drawings per class of the paper code's test
# episodes, a number or ``"k_shot"`` (see :func:`paper_test_query`). With transductive batch norm
# the test batch's size matters. MAML's code samples ``2K`` drawings per class for its Omniglot
# test episodes as for training (``DataGenerator(update_batch_size*2, ...)``), so it scores K
# queries per class, the shape the network was trained on; Reptile's code scores one query per
# class whatever the shot (``num_shots + 1`` drawings). The course's 15 queries per class (75
# drawings normalised together) cost the finished first-order MAML 1-shot run 2.3 points
# (96.29 vs 98.60 %). Records hold both tests.
# ``train_split`` (Vinyals' protocol): the characters training episodes come from, ``"train"``
# (default, the 1,028 of Vinyals' split, validation on the other 172) or ``"trainval"`` (all
# 1,200, no validation), as the paper code's final model was trained.
PAPER_SETTINGS = {
    "maml": dict(  # Finn et al. 2017, arXiv 1703.03400, section 5.2 and appendix A.1
        paper="MAML, Finn et al. 2017 (arXiv 1703.03400)", cls=MAML,
        kwargs=dict(inner_lr=0.4, inner_steps=1, eval_inner_steps=3, first_order=False),
        meta_lr=1e-3, meta_batch_size=32, n_steps=60_000, train_shots=None,
        paper_test_query="k_shot"),
    "fomaml": dict(  # the same, first-order approximation (section 5.2)
        # Omniglot numbers for first-order MAML: Nichol et al. 2018 (arXiv 1803.02999), Table 1
        paper="first-order MAML, Finn et al. 2017 (arXiv 1703.03400); Omniglot results from "
              "Nichol et al. 2018 (arXiv 1803.02999)", cls=MAML,
        kwargs=dict(inner_lr=0.4, inner_steps=1, eval_inner_steps=3, first_order=True),
        meta_lr=1e-3, meta_batch_size=32, n_steps=60_000, train_shots=None,
        paper_test_query="k_shot"),
    "metasgd": dict(  # Li et al. 2017, arXiv 1707.09835; one inner step, alpha learned
        paper="Meta-SGD, Li et al. 2017 (arXiv 1707.09835)", cls=MetaSGD,
        kwargs=dict(inner_lr=0.4, inner_steps=1, eval_inner_steps=1),
        meta_lr=1e-3, meta_batch_size=32, n_steps=60_000, train_shots=None,
        paper_test_query="k_shot"),
    "reptile": dict(  # Nichol et al. 2018, arXiv 1803.02999, appendix A (Omniglot)
        paper="Reptile, Nichol et al. 2018 (arXiv 1803.02999)", cls=Reptile,
        kwargs=dict(inner_lr=1e-3, inner_steps=5, inner_batch_size=10, eval_inner_steps=50,
                    meta_lr_final=0.0),
        meta_lr=1.0, meta_batch_size=5, n_steps=100_000, train_shots=10,
        paper_test_query=1),
    # Snell et al. 2017, arXiv 1703.05175, section 3.1: 60-way training episodes with 5 queries
    # per class and the test shot, Adam 1e-3 halved every 2,000 episodes, one model per shot
    # evaluated at 5 and 20 ways. The paper's code (jakesnell/prototypical-networks) trains on
    # the 1,028 training characters until the validation loss has not improved for 200 epochs of
    # 100 episodes, then trains its final model on all 1,200 (train + validation) for the best
    # epoch count plus those 200 epochs (at least 20,000 episodes). We train on the 1,200 for
    # 20,000 episodes: by then the learning rate is 1/1024 of its start.
    "protonet": dict(
        paper="Prototypical Networks, Snell et al. 2017 (arXiv 1703.05175)", cls=ProtoNet,
        model=lambda n_way: conv4(None, downsample="maxpool", norm="running"),
        kwargs=dict(learning_rate=1e-3, halve_every=2000), meta_lr=None,
        meta_batch_size=1, n_steps=20_000, train_shots=None, train_query=5, train_way=60,
        test_ways=(5, 20), train_split="trainval"),
    # Vinyals et al. 2016, arXiv 1606.04080: Omniglot results with cosine attention and no
    # full-context embeddings. The paper trains one model per test setting and gives no
    # optimiser; we train one model per shot with 20-way episodes (5 queries per class) and
    # ProtoNet's schedule, and evaluate it at 5 and 20 ways, to halve the CPU time.
    "matching": dict(
        paper="Matching Networks, Vinyals et al. 2016 (arXiv 1606.04080)", cls=MatchingNetwork,
        model=lambda n_way: conv4(None, downsample="maxpool", norm="running"),
        kwargs=dict(fce=False, learning_rate=1e-3, halve_every=2000), meta_lr=None,
        meta_batch_size=1, n_steps=20_000, train_shots=None, train_query=5, train_way=20,
        test_ways=(5, 20)),
    # Chen et al. 2019, arXiv 1904.04232 (their code's Omniglot setting): pre-train a classifier
    # over all training classes (with rotations) in mini-batches of 16 with Adam 1e-3 for 5
    # epochs, then adapt on each test episode's support set only. One model serves every test
    # setting; it is scored with both adaptations (nearest class mean, fine-tuned linear head).
    "baseline": dict(
        paper="Baseline, Chen et al. 2019 (arXiv 1904.04232)", cls=FineTuneBaseline,
        model=lambda n_way: conv4(None, downsample="maxpool", norm="running"),
        kwargs=dict(learning_rate=1e-3, adaptation="linear"), meta_lr=None,
        meta_batch_size=1, n_steps=25_700, batch_size=16, test_ways=(5, 20),
        test_shots=(1, 5), test_adaptations=("centroid", "linear")),
    # Ravi & Larochelle 2017 (ICLR, OpenReview rJY0-Kcll), the authors' Omniglot-like config as
    # reported by the module's author (the paper itself reports miniImageNet only): 12 updates
    # for 1-shot and 8 for 5-shot on the whole support set, 15 queries per class in training,
    # one episode per meta-update, Adam 1e-3, meta-gradient clipped to norm 0.25, 50,000 steps.
    # Learner: MAML's Omniglot Conv-4 (stride 2, BatchStatNorm: every batch normalised by its own
    # statistics in meta-training and meta-testing alike, so no information is carried from one
    # task to the next, the concern of the paper's section 3.3) at the paper's width of 32
    # filters. The coordinate-wise meta-learner runs its LSTM on every learner parameter, so its
    # cost grows with their number: 28,485 parameters with 32 filters against 112,261 with MAML's
    # 64, measured 0.49 against 2.02 s per meta-step on the 2-core CPU (50,000 steps: 7 h vs 28 h).
    "metalstm": dict(
        paper="Meta-Learner LSTM, Ravi & Larochelle 2017 (ICLR, OpenReview rJY0-Kcll)",
        cls=MetaLearnerLSTM, model=lambda n_way: conv4(n_way, filters=32),
        kwargs=dict(hidden_size=20, clipnorm=0.25),
        k_shots=(1, 5), shot_kwargs={1: dict(inner_steps=12), 5: dict(inner_steps=8)},
        meta_lr=1e-3, meta_batch_size=1, n_steps=50_000, train_shots=None, train_query=15),
    # Santoro et al. 2016 (arXiv 1605.06065), section 4.1 and Table 1: sequences of 5 classes x 10
    # instances (``k_shot=10, n_query=0``), meta-batch 16, the module's defaults (20x20 input,
    # LSTM 200, memory 128x40, 4 read heads, gamma 0.95). Optimiser: Adam 1e-3, as in the public
    # reimplementations; our first runs used RMSprop 1e-4 for 6,250 steps (100,000 episodes, read
    # off the axis of the paper's Figure 2) and both the MANN and the LSTM stayed on the
    # label-elimination plateau (about 31 % at the 2nd presentation) throughout, whereas a probe
    # with Adam 1e-3 left it after about 3,500 steps. 20,000 steps = 320,000 episodes.
    "mann": dict(
        paper="MANN, Santoro et al. 2016 (arXiv 1605.06065)", cls=MemoryAugmentedNetwork,
        model=None, kwargs=dict(image_size=20, controller_units=200, memory_slots=128,
                                memory_width=40, read_heads=4, gamma=0.95, learning_rate=1e-3),
        k_shots=(10,), meta_lr=None, meta_batch_size=16, n_steps=20_000, train_shots=None,
        train_query=0, val_query=0, evaluation="by_instance"),
    # The same MANN whose heads write a separate add vector instead of their key (the NTM's add
    # vector, Graves et al. 2014, arXiv 1410.5401, as in public reimplementations): the "mann"
    # run learned to ignore its memory (ablating its reads costs nothing), this one relies on it
    # (the ablation costs 26 points at the 10th presentation, 600 episodes). Otherwise identical.
    "mann_add": dict(
        paper="MANN, Santoro et al. 2016 (arXiv 1605.06065), heads writing add vectors",
        cls=MemoryAugmentedNetwork, model=None,
        kwargs=dict(image_size=20, controller_units=200, memory_slots=128, memory_width=40,
                    read_heads=4, gamma=0.95, write="add", learning_rate=1e-3),
        k_shots=(10,), meta_lr=None, meta_batch_size=16, n_steps=20_000, train_shots=None,
        train_query=0, val_query=0, evaluation="by_instance"),
    # The same paper's LSTM baseline: the same controller and sequences, no external memory.
    "lstm": dict(
        paper="LSTM baseline of Santoro et al. 2016 (arXiv 1605.06065)",
        cls=MemoryAugmentedNetwork, model=None,
        kwargs=dict(image_size=20, controller_units=200, memory=False, learning_rate=1e-3),
        k_shots=(10,), meta_lr=None, meta_batch_size=16, n_steps=20_000, train_shots=None,
        train_query=0, val_query=0, evaluation="by_instance"),
}

# Classes of the baseline's pre-training: the training characters of each protocol x 4 rotations.
TRAINING_CLASSES = {"vinyals": 1028 * 4, "lake": 964 * 4}

# Published Omniglot accuracies (%), with their 95 % CI where reported, by (algorithm, n_way,
# k_shot).
PAPER_RESULTS = {
    ("maml", 5, 1): (98.7, 0.4), ("maml", 5, 5): (99.9, 0.1),
    ("maml", 20, 1): (95.8, 0.3), ("maml", 20, 5): (98.9, 0.2),
    ("fomaml", 5, 1): (98.3, 0.5), ("fomaml", 5, 5): (99.2, 0.2),
    ("reptile", 5, 1): (95.39, 0.09), ("reptile", 5, 5): (98.90, 0.10),
    ("metasgd", 5, 1): (99.53, 0.26), ("metasgd", 5, 5): (99.93, 0.09),
    ("protonet", 5, 1): (98.8, None), ("protonet", 5, 5): (99.7, None),
    ("protonet", 20, 1): (96.0, None), ("protonet", 20, 5): (98.9, None),
    ("matching", 5, 1): (98.1, None), ("matching", 5, 5): (98.9, None),
    ("matching", 20, 1): (93.8, None), ("matching", 20, 5): (98.5, None),
}

# Reptile's paper reports its Omniglot numbers twice (Nichol et al. 2018, Table 1): without
# transduction (above, each query drawing normalised with the support set) and with it (below,
# the query drawings normalised together). The course's tests are transductive, like MAML's
# code, so these are Reptile's comparable numbers; MAML's and first-order MAML's above already are.
PAPER_RESULTS_TRANSDUCTIVE = {("reptile", 5, 1): (97.68, 0.04), ("reptile", 5, 5): (99.48, 0.06)}

# Published accuracies (%) on another dataset than Omniglot, kept apart from PAPER_RESULTS: the
# Meta-Learner LSTM paper (Ravi & Larochelle 2017, Table 1) reports miniImageNet only, 5-way.
PAPER_RESULTS_MINIIMAGENET = {("metalstm", 5, 1): (43.44, 0.77), ("metalstm", 5, 5): (60.60, 0.71)}

# Presentations scored for sequence learners (``evaluation="by_instance"``): every column of
# Santoro et al.'s Table 1 (the module's PAPER_INSTANCES plus the 4th).
INSTANCES = (1, 2, 3, 4, 5, 10)

# Santoro et al. 2016, Table 1 (Omniglot, 5 classes per episode, one-hot labels): accuracy (%) at
# the k-th presentation of a class, columns 1st, 2nd, 3rd, 4th, 5th, 10th. No confidence
# intervals reported. No copy of the paper is stored here: these values were first written from
# memory, then checked against three independent course notes quoting the table, which agree with
# them and with each other (2026-11-27).
PAPER_RESULTS_BY_INSTANCE = {
    "mann": {1: 36.4, 2: 82.8, 3: 91.0, 4: 92.6, 5: 94.9, 10: 98.1},
    "mann_add": {1: 36.4, 2: 82.8, 3: 91.0, 4: 92.6, 5: 94.9, 10: 98.1},  # the same MANN row
    "lstm": {1: 24.4, 2: 49.5, 3: 55.3, 4: 61.0, 5: 63.6, 10: 62.5},
}
# The same table's human row: people shown the same kind of sequences (Santoro et al. 2016).
HUMAN_RESULTS_BY_INSTANCE = {1: 34.5, 2: 57.3, 3: 70.1, 4: 71.8, 5: 81.4, 10: 92.4}
PAPER_RESULTS_BY_INSTANCE_SOURCE = ("Santoro et al. 2016 (arXiv 1605.06065), Table 1, as quoted "
                                    "by secondary sources (the PDF was not available offline)")


def default_k_shot(name: str) -> int:
    """The shot algorithm ``name`` is run with when none is given: the first of its setting's
    ``k_shots`` (10 instances for the MANN), else 1. Defined in notebook ``06_model_based``."""
    return PAPER_SETTINGS[name].get("k_shots", (1,))[0]


def hyperparameters(name: str, k_shot: int | None = None) -> dict:
    """The constructor arguments of algorithm ``name`` for ``k_shot`` (default
    :func:`default_k_shot`): the setting's ``kwargs`` and, when the setting has them, its
    ``shot_kwargs`` for that shot (e.g. the Meta-Learner LSTM's 12 or 8 updates, Ravi &
    Larochelle 2017). Defined in notebook ``06_model_based``; also what a run record stores."""
    if name not in PAPER_SETTINGS:
        raise ValueError(f"algorithm must be one of {sorted(PAPER_SETTINGS)}, got {name!r}.")
    setting = PAPER_SETTINGS[name]
    k_shot = default_k_shot(name) if k_shot is None else k_shot
    if "k_shots" in setting and k_shot not in setting["k_shots"]:
        raise ValueError(f"{name} is set up for k_shot in {setting['k_shots']} (its paper's "
                         f"setting), got k_shot={k_shot}.")
    return {**setting["kwargs"], **setting.get("shot_kwargs", {}).get(k_shot, {})}


def make_algorithm(name: str, n_way: int, n_steps: int | None = None, protocol: str = "vinyals",
                   k_shot: int | None = None, **overrides):
    """Build algorithm ``name`` (a key of :data:`PAPER_SETTINGS`) on a fresh network with the
    paper's hyperparameters (:func:`hyperparameters` for ``k_shot``); ``overrides`` replace
    constructor arguments. ``protocol`` matters only for the baseline, whose classifier has one
    output per training class; ``k_shot`` only for settings that depend on it (the Meta-Learner
    LSTM's updates, the MANN's instances per class)."""
    if name not in PAPER_SETTINGS:
        raise ValueError(f"algorithm must be one of {sorted(PAPER_SETTINGS)}, got {name!r}.")
    setting = PAPER_SETTINGS[name]
    k_shot = default_k_shot(name) if k_shot is None else k_shot
    kwargs = {**hyperparameters(name, k_shot), **overrides}
    if setting["cls"] is Reptile:
        kwargs.setdefault("meta_lr", setting["meta_lr"])
        kwargs.setdefault("annealing_steps", n_steps or setting["n_steps"])
    elif issubclass(setting["cls"], (MAML, MetaLearnerLSTM)):
        kwargs.setdefault("meta_optimizer", keras.optimizers.Adam(setting["meta_lr"]))
    elif setting["cls"] is FineTuneBaseline:
        kwargs.setdefault("n_classes", TRAINING_CLASSES[protocol])
    model = setting.get("model", conv4)
    if model is None:  # the learner builds its own network (the MANN's controller)
        return setting["cls"](n_way, n_instances=k_shot, **kwargs)
    return setting["cls"](model(n_way), **kwargs)


def training_shape(name: str, n_way: int, k_shot: int) -> tuple[int, int]:
    """``(train_way, n_query)`` of algorithm ``name``'s training episodes for ``n_way``-way
    ``k_shot``-shot tests (see :data:`PAPER_SETTINGS`)."""
    setting = PAPER_SETTINGS[name]
    if "train_query" in setting:
        n_query = setting["train_query"]
    else:
        n_query = k_shot if setting["train_shots"] is None else setting["train_shots"] - k_shot
    return setting.get("train_way", n_way), n_query


# The two evaluation protocols of the Omniglot literature, as stated next to every number.
PROTOCOLS = {
    "vinyals": "Vinyals split (1,028 training, 172 validation, 423 test characters), every "
               "character in 4 rotations as separate classes, 28x28",
    "lake": "Lake split (train on the 30 background alphabets, with 4 rotations as extra "
            "classes; test within one of the 20 evaluation alphabets, no rotations), 28x28",
}

# Lake et al. 2015 (Science 350:1332), 20-way 1-shot within an evaluation alphabet: accuracy (%)
# = 100 - the error rates they report.
LAKE_RESULTS = {"humans": 95.5, "hierarchical Bayesian program learning": 95.2,
                "convolutional Siamese net (Koch et al. 2015)": 92.0}


def omniglot_tasks(data, split: str, n_way: int, k_shot: int, n_query: int,
                   protocol: str = "vinyals") -> OmniglotEpisodes:
    """Episodes of one split of a protocol of :data:`PROTOCOLS`: Vinyals' (all splits with 4
    rotations) or Lake's (training with rotations, test episodes within one alphabet)."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {sorted(PROTOCOLS)}, got {protocol!r}.")
    characters = split_characters(data, protocol)[split]
    lake_test = protocol == "lake" and split != "train"
    return OmniglotEpisodes(data, characters, n_way=n_way, k_shot=k_shot, n_query=n_query,
                            rotations=not lake_test, within_alphabet=lake_test)


def evaluate_omniglot(algorithm, data, n_way: int, k_shot: int, n_episodes: int = 600,
                      n_query: int = 15, split: str = "test", seed: int = 2017,
                      progress: bool = True, protocol: str = "vinyals") -> ScoreWithCI:
    """Mean query accuracy ± 95 % CI after adaptation, on ``n_episodes`` episodes."""
    tasks = omniglot_tasks(data, split, n_way, k_shot, n_query, protocol)
    return evaluate(algorithm.score_episode, tasks, n_episodes, seed=seed, progress=progress)


def evaluate_by_instance(algorithm, data, n_way: int, k_shot: int, n_episodes: int = 600,
                         split: str = "test", seed: int = 2017, protocol: str = "vinyals",
                         instances=INSTANCES) -> dict:
    """Accuracy at the k-th presentation of a class, ``{k: ScoreWithCI}`` (mean over episodes,
    95 % CI), of a sequence learner (:class:`MemoryAugmentedNetwork`) on ``n_episodes``
    sequences of ``n_way`` classes x ``k_shot`` instances, as in Santoro et al.'s Table 1.

    Defined in notebook ``06_model_based`` (Santoro et al. 2016, arXiv 1605.06065)."""
    tasks = omniglot_tasks(data, split, n_way, k_shot, 0, protocol)
    return algorithm.accuracy_by_instance(tasks, n_episodes, seed=seed,
                                          instances=[k for k in instances if k <= k_shot])


def paper_test_query(name: str, k_shot: int) -> int | None:
    """Query drawings per class in the test episodes of algorithm ``name``'s paper code at
    ``k_shot`` shots (MAML's code: K, Reptile's: 1), or ``None`` where the course's 15 are the
    paper's test too."""
    value = PAPER_SETTINGS[name].get("paper_test_query")
    return k_shot if value == "k_shot" else value


def versus_paper(accuracy: float, ci95: float, paper_accuracy: float,
                 paper_ci95: float | None) -> str:
    """The course's target, "within the paper's 95 % CI or above it", applied to one result (%).

    Against a published interval our mean must reach its lower end; against a number published
    without one, our interval must reach it. Returns ``"above"``, ``"within"`` or
    ``"below by X points"`` (X the gap to the nearest acceptable value).
    """
    if paper_ci95 is None:
        low, high = accuracy - ci95, accuracy + ci95
        if low > paper_accuracy:
            return "above"
        return "within" if high >= paper_accuracy else f"below by {paper_accuracy - high:.2f} points"
    if accuracy > paper_accuracy + paper_ci95:
        return "above"
    gap = paper_accuracy - paper_ci95 - accuracy
    return "within" if gap <= 0 else f"below by {gap:.2f} points"


def training_split(name: str, protocol: str = "vinyals") -> str:
    """The split algorithm ``name`` trains on: its setting's ``train_split`` under Vinyals'
    protocol (``"trainval"``: all 1,200 characters), else ``"train"``."""
    return PAPER_SETTINGS[name].get("train_split", "train") if protocol == "vinyals" else "train"


def train_omniglot(name: str, data, n_way: int, k_shot: int, n_steps: int, *, seed: int = 0,
                   run_dir=None, meta_batch_size: int | None = None, val_episodes: int = 100,
                   validate_every: int = 1000, progress: bool = True, live_plot: bool = False,
                   protocol: str = "vinyals", **overrides):
    """Meta-train algorithm ``name`` on Omniglot ``n_way``-way ``k_shot``-shot with the shared
    loop (checkpoints in ``run_dir``; calling again resumes). Returns ``(algorithm, history)``.
    Validation episodes come from the protocol's validation split (Lake's has none, and a
    setting that trains on ``"trainval"`` leaves none)."""
    setting = PAPER_SETTINGS[name]
    split = training_split(name, protocol)
    keras.utils.set_random_seed(seed)
    algorithm = make_algorithm(name, n_way, n_steps=n_steps, protocol=protocol, k_shot=k_shot,
                               **overrides)
    if "batch_size" in setting:  # pre-training on all training classes at once
        tasks = ClassBatches(data, split_characters(data, protocol)[split],
                             batch_size=setting["batch_size"], rotations=True)
    else:
        train_way, n_query = training_shape(name, n_way, k_shot)
        tasks = omniglot_tasks(data, split, train_way, k_shot, n_query, protocol)

    def validate():
        score = evaluate_omniglot(algorithm, data, n_way, k_shot, val_episodes,
                                  n_query=setting.get("val_query", k_shot), split="val", seed=1,
                                  progress=False)
        return {"val_accuracy": score.mean}

    validation = val_episodes and split == "train" and protocol == "vinyals"
    history = meta_train(algorithm, tasks, n_steps=n_steps,
                         meta_batch_size=meta_batch_size or setting["meta_batch_size"],
                         seed=seed, run_dir=run_dir, validate=validate if validation else None,
                         validate_every=validate_every, checkpoint_every=min(500, n_steps),
                         progress=progress, live_plot=live_plot)
    return algorithm, history


# -- committed weights and records ----------------------------------------------------------------
def run_name(name: str, n_way: int, k_shot: int, protocol: str = "vinyals") -> str:
    """``omniglot_<algorithm>_<way>w<shot>s[_lake]``; the baseline, trained on no episodes, is
    ``omniglot_baseline[_lake]``."""
    episodes = "" if "batch_size" in PAPER_SETTINGS.get(name, {}) else f"_{n_way}w{k_shot}s"
    return f"omniglot_{name}{episodes}" + ("" if protocol == "vinyals" else f"_{protocol}")


def _stored_variables(algorithm) -> list:
    """What a trained learner needs at test time: its meta-variables, and Reptile's inner
    optimiser state."""
    return list(algorithm.meta_variables) + list(getattr(algorithm, "inner_state", []))


def save_weights(algorithm, path) -> None:
    """Save the meta-learned variables (initialisation, Meta-SGD's learning rates, Reptile's
    inner optimiser state)."""
    arrays = {f"{i:03d}": np.asarray(v.numpy())
              for i, v in enumerate(_stored_variables(algorithm))}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)


def load_weights(algorithm, path) -> None:
    """Load weights saved by :func:`save_weights`; a mismatch raises a clear ``ValueError``."""
    with np.load(path) as saved:
        arrays = [saved[k] for k in sorted(saved.files)]
    variables = _stored_variables(algorithm)
    shapes = [tuple(v.shape) for v in variables]
    if [a.shape for a in arrays] != shapes:
        raise ValueError(f"{path} holds weights of shapes {[a.shape for a in arrays]}, but this "
                         f"model has {shapes}: it was saved for a different model or algorithm.")
    for variable, array in zip(variables, arrays):
        variable.assign(array)


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux), so that a record's seconds per step
    can be read against the machine that measured them; ``platform.processor()`` elsewhere."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_description() -> dict:
    import tensorflow as tf

    return {"platform": platform.platform(), "processor": platform.machine(),
            "cpu_model": cpu_model(), "cpu_count": os.cpu_count(),
            "python": platform.python_version(), "tensorflow": tf.__version__,
            "keras": keras.__version__}


def git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True, cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def write_record(path, record: dict) -> None:
    record = {**record, "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
        timespec="seconds"), "machine": machine_description(), "git_commit": git_commit()}
    Path(path).write_text(json.dumps(record, indent=2) + "\n")


def load_records(folder=WEIGHTS_DIR, prefix: str = "") -> list[dict]:
    """The run records ``<prefix>*.json`` in ``folder`` (the committed ``weights/`` by default),
    without the ``*.history.json`` learning curves that sit beside them."""
    paths = sorted(p for p in Path(folder).glob(f"{prefix}*.json")
                   if not p.name.endswith(".history.json"))
    return [json.loads(p.read_text()) for p in paths]


# -- measured cost of a meta-step -----------------------------------------------------------------
def _memory_probe():
    """``(current_mb, peak_mb, reset_peak)`` for this process. On Linux from ``/proc/self/status``
    (``VmRSS``, ``VmHWM``), whose peak can be reset (``/proc/self/clear_refs``); elsewhere the peak
    is ``ru_maxrss`` since the process started and cannot be reset."""
    import resource
    import sys

    def field(name):
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) / 1024 for line in status
                        if line.startswith(name + ":"))

    if os.path.exists("/proc/self/clear_refs"):
        def reset_peak():
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
        return (lambda: field("VmRSS")), (lambda: field("VmHWM")), reset_peak

    def peak():
        kilobytes = 1 / 1024 if sys.platform == "darwin" else 1  # macOS reports bytes
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * kilobytes / 1024
    return peak, peak, lambda: None


def meta_step_cost(name: str, n_way: int, k_shot: int, *, n_query: int | None = None,
                   meta_batch_size: int = 32, n_steps: int = 5, seed: int = 0) -> dict:
    """Seconds per meta-step and memory of algorithm ``name``, measured in this process.

    Defined in notebook ``04_maml_omniglot``. Every algorithm gets the same meta-batch (the same
    ``meta_batch_size`` episodes of ``n_way``-way ``k_shot``-shot with ``n_query`` query drawings
    per class, default ``k_shot`` as in MAML's training; Reptile trains on support and query
    together). Three phases are measured apart: tracing ``train_step``, its first call (slow: the
    graph is optimised) and ``n_steps`` further steps, which are timed (median).

    Memory is resident memory as the operating system sees it. On Linux: ``before_mb`` is the
    resident set after TensorFlow, the data and the model are loaded, and the peak resident set
    (``VmHWM``, reset before each phase) of each phase is reported as ``trace_peak_mb``,
    ``first_call_peak_mb`` and ``steps_peak_mb``. Elsewhere every figure is the process's
    ``ru_maxrss`` high-water mark so far (``peak_source`` says which). Run it in a fresh process
    (:func:`meta_step_cost_in_subprocess`) so that nothing else lives in the process.

    Returns a dict with ``algorithm``, ``seconds_per_step`` (median), ``step_seconds``,
    ``trace_seconds``, ``first_call_seconds``, the memory figures above (MB) and ``peak_source``.
    """
    import statistics
    import time

    from .omniglot import load_omniglot

    current_mb, peak_mb, reset_peak = _memory_probe()
    data = load_omniglot(verbose=False)
    tasks = omniglot_tasks(data, "train", n_way, k_shot, k_shot if n_query is None else n_query)
    keras.utils.set_random_seed(seed)
    algorithm = make_algorithm(name, n_way, k_shot=k_shot)
    batch = next(tasks.batches(meta_batch_size, seed)).arrays()
    result = {"algorithm": name, "before_mb": current_mb()}

    def phase(key, run):
        reset_peak()
        start = time.perf_counter()
        run()
        result[f"{key}_seconds"], result[f"{key}_peak_mb"] = time.perf_counter() - start, peak_mb()

    def one_step():
        float(algorithm.train_step(*batch)["loss"])  # float(): wait for the step to finish

    phase("trace", lambda: algorithm.train_step.get_concrete_function(*batch))
    phase("first_call", one_step)
    seconds = []

    def steps():
        for _ in range(n_steps):
            start = time.perf_counter()
            one_step()
            seconds.append(time.perf_counter() - start)

    phase("steps", steps)
    result.pop("steps_seconds")
    return {**result, "seconds_per_step": statistics.median(seconds), "step_seconds": seconds,
            "peak_source": "VmHWM" if os.path.exists("/proc/self/clear_refs") else "ru_maxrss"}


def meta_step_cost_in_subprocess(name: str, n_way: int, k_shot: int, **kwargs) -> dict:
    """:func:`meta_step_cost` run in a fresh Python process (same interpreter and environment),
    so its peak memory belongs to that one algorithm alone. Takes a few seconds more than the
    steps themselves: the child imports TensorFlow and traces the step."""
    import sys

    code = ("import json, sys\n"
            "from metalearn_helpers import experiments\n"
            "args = json.loads(sys.argv[1])\n"
            "print(json.dumps(experiments.meta_step_cost(**args)))\n")
    args = json.dumps(dict(name=name, n_way=n_way, k_shot=k_shot, **kwargs))
    done = subprocess.run([sys.executable, "-c", code, args], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[1])
    if done.returncode != 0:
        raise RuntimeError(f"measuring {name} in a subprocess failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])
