"""Omniglot few-shot experiments: every algorithm built, trained and evaluated one way.

Defined in notebook ``04_maml_omniglot``; ``scripts/train_omniglot.py`` is the command-line
front end used for the long ``full`` runs whose weights and records are committed in ``weights/``.

Protocol (stated wherever a number is shown): Vinyals et al.'s split (1,028 training characters,
172 validation, 423 test; :func:`metalearn_helpers.omniglot.split_characters`), every character in
4 rotations as separate classes, 28x28 images; during meta-training as many query drawings per
class as support drawings (as MAML's code does); test accuracy over 600 episodes with 15 query
drawings per class, mean and 95 % confidence interval.
"""

from __future__ import annotations

import contextlib

import keras

from .baseline import ClassBatches, FineTuneBaseline
from .episodes import OmniglotEpisodes
from .evaluation import ScoreWithCI, evaluate
from .maml import ANIL, MAML, MetaSGD
from .mann import MemoryAugmentedNetwork
from .matching import MatchingNetwork
from .meta_lstm import MetaLearnerLSTM
from .models import conv4
from .omniglot import split_characters
from .papers import INSTANCES, OMNIGLOT_SETTINGS, PROTOCOLS, TRAINING_CLASSES
from .protonet import ProtoNet
from .reptile import Reptile
from .training import meta_train

# The one registry of learners: the ``learner`` of a setting in papers.OMNIGLOT_SETTINGS -> class.
LEARNERS = {"maml": MAML, "metasgd": MetaSGD, "reptile": Reptile, "protonet": ProtoNet,
            "matching": MatchingNetwork, "baseline": FineTuneBaseline,
            "metalstm": MetaLearnerLSTM, "mann": MemoryAugmentedNetwork, "anil": ANIL}


def setting(name: str) -> dict:
    """The paper setting of Omniglot algorithm ``name`` (:data:`papers.OMNIGLOT_SETTINGS`);
    an unknown name raises ``ValueError`` listing the known ones."""
    if name not in OMNIGLOT_SETTINGS:
        raise ValueError(f"algorithm must be one of {sorted(OMNIGLOT_SETTINGS)}, got {name!r}.")
    return OMNIGLOT_SETTINGS[name]


def default_k_shot(name: str) -> int:
    """The shot algorithm ``name`` is run with when none is given: the first of its setting's
    ``k_shots`` (10 instances for the MANN), else 1. Defined in notebook ``06_model_based``."""
    return setting(name).get("k_shots", (1,))[0]


def hyperparameters(name: str, k_shot: int | None = None) -> dict:
    """The constructor arguments of algorithm ``name`` for ``k_shot`` (default
    :func:`default_k_shot`): the setting's ``kwargs`` and, when the setting has them, its
    ``shot_kwargs`` for that shot (e.g. the Meta-Learner LSTM's 12 or 8 updates, Ravi &
    Larochelle 2017). Defined in notebook ``06_model_based``; also what a run record stores."""
    paper = setting(name)
    k_shot = default_k_shot(name) if k_shot is None else k_shot
    if "k_shots" in paper and k_shot not in paper["k_shots"]:
        raise ValueError(f"{name} is set up for k_shot in {paper['k_shots']} (its paper's "
                         f"setting), got k_shot={k_shot}.")
    return {**paper["kwargs"], **paper.get("shot_kwargs", {}).get(k_shot, {})}


def make_algorithm(name: str, n_way: int, n_steps: int | None = None, protocol: str = "vinyals",
                   k_shot: int | None = None, **overrides):
    """Build algorithm ``name`` (a key of :data:`papers.OMNIGLOT_SETTINGS`) on a fresh network with the
    paper's hyperparameters (:func:`hyperparameters` for ``k_shot``); ``overrides`` replace
    constructor arguments. ``protocol`` matters only for the baseline, whose classifier has one
    output per training class; ``k_shot`` only for settings that depend on it (the Meta-Learner
    LSTM's updates, the MANN's instances per class)."""
    paper = setting(name)
    k_shot = default_k_shot(name) if k_shot is None else k_shot
    kwargs = {**hyperparameters(name, k_shot), **overrides}
    kwargs.setdefault("meta_lr", paper["meta_lr"])
    if paper["learner"] == "reptile":
        kwargs.setdefault("annealing_steps", n_steps or paper["n_steps"])
    elif paper["learner"] == "baseline":
        kwargs.setdefault("n_classes", TRAINING_CLASSES[protocol])
    learner = LEARNERS[paper["learner"]]
    network = paper.get("network", {"head": True})
    if network is None:  # the learner builds its own network (the MANN's controller)
        return learner(n_way, n_instances=k_shot, **kwargs)
    network = dict(network)
    return learner(conv4(n_way if network.pop("head") else None, **network), **kwargs)


def training_shape(name: str, n_way: int, k_shot: int) -> tuple[int, int]:
    """``(train_way, n_query)`` of algorithm ``name``'s training episodes for ``n_way``-way
    ``k_shot``-shot tests (see :data:`papers.OMNIGLOT_SETTINGS`)."""
    paper = setting(name)
    if "train_query" in paper:
        n_query = paper["train_query"]
    else:
        n_query = k_shot if paper["train_shots"] is None else paper["train_shots"] - k_shot
    return paper.get("train_way", n_way), n_query


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
    instances = [k for k in instances if k <= k_shot]
    scores = evaluate(lambda episode: algorithm.score_by_instance(episode, instances), tasks,
                      n_episodes, seed=seed, progress=False)
    return {k: scores[j] for j, k in enumerate(instances)}


def paper_test_query(name: str, k_shot: int) -> int | None:
    """Query drawings per class in the test episodes of algorithm ``name``'s paper code at
    ``k_shot`` shots (MAML's code: K, Reptile's: 1), or ``None`` where the course's 15 are the
    paper's test too."""
    value = setting(name).get("paper_test_query")
    return k_shot if value == "k_shot" else value


def training_split(name: str, protocol: str = "vinyals") -> str:
    """The split algorithm ``name`` trains on: its setting's ``train_split`` under Vinyals'
    protocol (``"trainval"``: all 1,200 characters), else ``"train"``."""
    return setting(name).get("train_split", "train") if protocol == "vinyals" else "train"


def train_omniglot(name: str, data, n_way: int, k_shot: int, n_steps: int, *, seed: int = 0,
                   run_dir=None, meta_batch_size: int | None = None, val_episodes: int = 100,
                   validate_every: int = 1000, progress: bool = True, live_plot: bool = False,
                   protocol: str = "vinyals", strategy=None, **overrides):
    """Meta-train algorithm ``name`` on Omniglot ``n_way``-way ``k_shot``-shot with the shared
    loop (checkpoints in ``run_dir``; calling again resumes). Returns ``(algorithm, history)``.
    Validation episodes come from the protocol's validation split (Lake's has none, and a
    setting that trains on ``"trainval"`` leaves none). ``strategy``: a ``tf.distribute``
    strategy to train on several devices or machines (:mod:`metalearn_helpers.distributed`)."""
    paper = setting(name)
    split = training_split(name, protocol)
    keras.utils.set_random_seed(seed)
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        algorithm = make_algorithm(name, n_way, n_steps=n_steps, protocol=protocol,
                                   k_shot=k_shot, **overrides)
    if "batch_size" in paper:  # pre-training on all training classes at once
        tasks = ClassBatches(data, split_characters(data, protocol)[split],
                             batch_size=paper["batch_size"], rotations=True)
    else:
        train_way, n_query = training_shape(name, n_way, k_shot)
        tasks = omniglot_tasks(data, split, train_way, k_shot, n_query, protocol)

    def validate():
        score = evaluate_omniglot(algorithm, data, n_way, k_shot, val_episodes,
                                  n_query=paper.get("val_query", k_shot), split="val", seed=1,
                                  progress=False)
        return {"val_accuracy": score.mean}

    validation = val_episodes and split == "train" and protocol == "vinyals"
    history = meta_train(algorithm, tasks, n_steps=n_steps,
                         meta_batch_size=meta_batch_size or paper["meta_batch_size"],
                         seed=seed, run_dir=run_dir, validate=validate if validation else None,
                         validate_every=validate_every, checkpoint_every=min(500, n_steps),
                         progress=progress, live_plot=live_plot, strategy=strategy)
    return algorithm, history


# -- committed runs -------------------------------------------------------------------------------
def run_name(name: str, n_way: int, k_shot: int, protocol: str = "vinyals") -> str:
    """``omniglot_<algorithm>_<way>w<shot>s[_lake]``; the baseline, trained on no episodes, is
    ``omniglot_baseline[_lake]``."""
    episodes = "" if "batch_size" in setting(name) else f"_{n_way}w{k_shot}s"
    return f"omniglot_{name}{episodes}" + ("" if protocol == "vinyals" else f"_{protocol}")
