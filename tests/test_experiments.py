"""The Omniglot experiment settings, protocols and committed-weights helpers (experiments.py)."""

import numpy as np
import pytest

from metalearn_helpers import experiments


@pytest.mark.parametrize("name,expected", [
    ("maml", (5, 1)), ("fomaml", (5, 1)), ("metasgd", (5, 1)),
    ("reptile", (5, 9)),     # 10 drawings per class in training, support included
    ("protonet", (60, 5)),   # Snell et al.: 60-way training episodes, 5 queries per class
    ("matching", (20, 5)),
])
def test_training_shape_follows_each_paper(name, expected):
    assert experiments.training_shape(name, 5, 1) == expected


def test_every_published_number_has_a_setting():
    assert {name for name, _, _ in experiments.PAPER_RESULTS} <= set(experiments.PAPER_SETTINGS)


def test_protocols(omniglot):
    vinyals = experiments.omniglot_tasks(omniglot, "test", 5, 1, 15)
    assert vinyals.rotations and not vinyals.within_alphabet and len(vinyals.classes) == 423 * 4
    lake_train = experiments.omniglot_tasks(omniglot, "train", 60, 1, 5, protocol="lake")
    assert lake_train.rotations and len(lake_train.classes) == 964 * 4
    lake_test = experiments.omniglot_tasks(omniglot, "test", 20, 1, 15, protocol="lake")
    assert lake_test.within_alphabet and not lake_test.rotations
    episode = lake_test.sample(0)
    assert len(set(omniglot.alphabets[episode.info["classes"]])) == 1
    for protocol, n_classes in experiments.TRAINING_CLASSES.items():
        train = experiments.omniglot_tasks(omniglot, "train", 5, 1, 1, protocol=protocol)
        assert len(train.classes) == n_classes  # the baseline's classifier has one output each
    with pytest.raises(ValueError, match="protocol"):
        experiments.omniglot_tasks(omniglot, "test", 5, 1, 15, protocol="koch")


def test_run_names():
    assert experiments.run_name("maml", 5, 1) == "omniglot_maml_5w1s"
    assert experiments.run_name("protonet", 60, 5, "lake") == "omniglot_protonet_60w5s_lake"
    assert experiments.run_name("baseline", 5, 1) == "omniglot_baseline"  # trained on no episodes


def test_protonet_weights_round_trip_with_running_averages(tmp_path):
    saved = experiments.make_algorithm("protonet", 60)
    for variable in saved.meta_variables:  # running averages included, not only weights
        variable.assign(np.random.default_rng(0).normal(size=variable.shape) + 1.0)
    experiments.save_weights(saved, tmp_path / "w.npz")
    loaded = experiments.make_algorithm("protonet", 60)
    experiments.load_weights(loaded, tmp_path / "w.npz")
    for a, b in zip(saved.meta_variables, loaded.meta_variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    with pytest.raises(ValueError, match="different model or algorithm"):
        experiments.load_weights(experiments.make_algorithm("maml", 5), tmp_path / "w.npz")


def test_unknown_algorithm():
    with pytest.raises(ValueError, match="algorithm must be one of"):
        experiments.make_algorithm("siamese", 5)
