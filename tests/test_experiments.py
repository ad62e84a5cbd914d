"""The Omniglot experiment settings, protocols and committed-weights helpers (experiments.py)."""

import numpy as np
import pytest

from metalearn_helpers import experiments, papers, records


@pytest.mark.parametrize("name,expected", [
    ("maml", (5, 1)), ("fomaml", (5, 1)), ("metasgd", (5, 1)),
    ("reptile", (5, 9)),     # 10 drawings per class in training, support included
    ("protonet", (60, 5)),   # Snell et al.: 60-way training episodes, 5 queries per class
    ("matching", (20, 5)),
])
def test_training_shape_follows_each_paper(name, expected):
    assert experiments.training_shape(name, 5, 1) == expected


@pytest.mark.parametrize("name,k_shot,expected", [
    ("maml", 1, 1), ("maml", 5, 5),        # MAML's code: 2K drawings per class, K of them queries
    ("fomaml", 5, 5), ("metasgd", 5, 5),
    ("reptile", 1, 1), ("reptile", 5, 1),  # Reptile's code: num_shots + 1 drawings per class
    ("protonet", 1, None), ("matching", 5, None),  # the course's 15 queries are theirs too
])
def test_paper_test_query_follows_each_code(name, k_shot, expected):
    assert records.paper_test_query(name, k_shot) == expected


@pytest.mark.parametrize("ours, paper, expected", [
    ((98.57, 0.49), (98.7, 0.4), "within"),             # MAML 5w1s: mean inside the paper's CI
    ((98.60, 0.46), (98.3, 0.5), "within"),
    ((99.73, 0.21), (99.48, 0.06), "above"),
    ((98.60, 0.46), (99.53, 0.26), "below by 0.67 points"),  # the gap to the CI's lower end
    ((98.82, 0.19), (98.8, None), "within"),            # no published CI: ours must reach it
    ((98.80, 0.08), (98.9, None), "below by 0.02 points"),
    ((98.50, 0.20), (98.1, None), "above"),
])
def test_versus_paper_applies_the_target(ours, paper, expected):
    assert records.versus_paper(*ours, *paper) == expected


def test_every_published_number_has_a_setting():
    assert {name for name, _, _ in papers.OMNIGLOT_RESULTS} <= set(papers.OMNIGLOT_SETTINGS)


def test_protocols(omniglot):
    vinyals = experiments.omniglot_tasks(omniglot, "test", 5, 1, 15)
    assert vinyals.rotations and not vinyals.within_alphabet and len(vinyals.classes) == 423 * 4
    lake_train = experiments.omniglot_tasks(omniglot, "train", 60, 1, 5, protocol="lake")
    assert lake_train.rotations and len(lake_train.classes) == 964 * 4
    lake_test = experiments.omniglot_tasks(omniglot, "test", 20, 1, 15, protocol="lake")
    assert lake_test.within_alphabet and not lake_test.rotations
    episode = lake_test.sample(0)
    assert len(set(omniglot.alphabets[episode.info["classes"]])) == 1
    for protocol, n_classes in papers.TRAINING_CLASSES.items():
        train = experiments.omniglot_tasks(omniglot, "train", 5, 1, 1, protocol=protocol)
        assert len(train.classes) == n_classes  # the baseline's classifier has one output each
    with pytest.raises(ValueError, match="protocol"):
        experiments.omniglot_tasks(omniglot, "test", 5, 1, 15, protocol="koch")


def test_protonet_trains_on_all_1200_characters_like_its_code(omniglot, monkeypatch):
    seen = {}

    def fake_meta_train(algorithm, tasks, *, validate=None, **kwargs):
        seen[type(algorithm).__name__] = (len(tasks.classes), validate)

    monkeypatch.setattr(experiments, "meta_train", fake_meta_train)
    experiments.train_omniglot("protonet", omniglot, 5, 1, n_steps=1, progress=False)
    experiments.train_omniglot("matching", omniglot, 5, 1, n_steps=1, progress=False)
    assert seen["ProtoNet"] == (1200 * 4, None)  # train + validation, so no validation left
    n_classes, validate = seen["MatchingNetwork"]
    assert n_classes == 1028 * 4 and validate is not None
    assert experiments.training_split("protonet", "lake") == "train"
    assert {experiments.training_split(name) for name in papers.OMNIGLOT_SETTINGS
            if name != "protonet"} == {"train"}


def test_run_names():
    assert experiments.run_name("maml", 5, 1) == "omniglot_maml_5w1s"
    assert experiments.run_name("protonet", 60, 5, "lake") == "omniglot_protonet_60w5s_lake"
    assert experiments.run_name("baseline", 5, 1) == "omniglot_baseline"  # trained on no episodes


def test_protonet_weights_round_trip_with_running_averages(tmp_path):
    saved = experiments.make_algorithm("protonet", 60)
    for variable in saved.meta_variables:  # running averages included, not only weights
        variable.assign(np.random.default_rng(0).normal(size=variable.shape) + 1.0)
    records.save_weights(saved, tmp_path / "w.npz")
    loaded = experiments.make_algorithm("protonet", 60)
    records.load_weights(loaded, tmp_path / "w.npz")
    for a, b in zip(saved.meta_variables, loaded.meta_variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    with pytest.raises(ValueError, match="different model or algorithm"):
        records.load_weights(experiments.make_algorithm("maml", 5), tmp_path / "w.npz")


def test_reptile_weights_include_its_inner_optimiser_state(tmp_path):
    saved = experiments.make_algorithm("reptile", 5)
    for variable in saved.inner_state:
        variable.assign(np.full(variable.shape, 0.25, np.float32))
    records.save_weights(saved, tmp_path / "w.npz")
    loaded = experiments.make_algorithm("reptile", 5)
    records.load_weights(loaded, tmp_path / "w.npz")
    for variable in loaded.inner_state:
        np.testing.assert_array_equal(variable.numpy(), 0.25)


def test_unknown_algorithm():
    with pytest.raises(ValueError, match="algorithm must be one of"):
        experiments.make_algorithm("siamese", 5)


# -- model-based learners (notebook 06) ------------------------------------------------------------
@pytest.mark.parametrize("name,k_shot,expected", [
    ("metalstm", 1, (5, 15)), ("metalstm", 5, (5, 15)),  # 15 queries per class in training
    ("mann", 10, (5, 0)), ("lstm", 10, (5, 0)),          # one sequence of 5 x 10, no query
])
def test_training_shape_of_model_based_learners(name, k_shot, expected):
    assert experiments.training_shape(name, 5, k_shot) == expected


def test_model_based_run_names_and_default_shots():
    assert experiments.default_k_shot("metalstm") == 1
    assert experiments.default_k_shot("mann") == experiments.default_k_shot("lstm") == 10
    assert experiments.default_k_shot("maml") == 1  # unchanged for the others
    assert experiments.run_name("metalstm", 5, 5) == "omniglot_metalstm_5w5s"
    assert experiments.run_name("mann", 5, 10) == "omniglot_mann_5w10s"
    assert experiments.run_name("lstm", 5, 10) == "omniglot_lstm_5w10s"


def test_meta_lstm_setting_depends_on_the_shot():
    assert experiments.hyperparameters("metalstm", 1)["inner_steps"] == 12
    assert experiments.hyperparameters("metalstm", 5)["inner_steps"] == 8
    assert experiments.hyperparameters("maml", 5) == papers.OMNIGLOT_SETTINGS["maml"]["kwargs"]
    with pytest.raises(ValueError, match="k_shot in"):
        experiments.hyperparameters("metalstm", 2)
    algorithm = experiments.make_algorithm("metalstm", 5, k_shot=5)
    assert (algorithm.inner_steps, algorithm.clipnorm) == (8, 0.25)
    assert float(algorithm.meta_optimizer.learning_rate) == pytest.approx(1e-3)


def test_mann_and_lstm_settings_build():
    mann = experiments.make_algorithm("mann", 5)
    assert mann.memory and (mann.n_way, mann.n_instances) == (5, 10)
    assert (mann.memory_slots, mann.memory_width, mann.read_heads) == (128, 40, 4)
    lstm = experiments.make_algorithm("lstm", 5)
    assert not lstm.memory and lstm.sequence_length == 50
    with pytest.raises(ValueError, match="k_shot in"):
        experiments.make_algorithm("mann", 5, k_shot=1)


def test_model_based_published_numbers_are_kept_apart():
    assert not {n for n, _, _ in papers.OMNIGLOT_RESULTS} & {"metalstm", "mann", "lstm"}
    assert {n for n, _, _ in papers.MINIIMAGENET_RESULTS} == {"metalstm"}
    for name, by_instance in papers.RESULTS_BY_INSTANCE.items():
        assert name in papers.OMNIGLOT_SETTINGS
        assert set(by_instance) == set(papers.INSTANCES)
    assert set(papers.HUMAN_RESULTS_BY_INSTANCE) == set(papers.INSTANCES)


def test_evaluate_by_instance_tiny(omniglot):
    lstm = experiments.make_algorithm("lstm", 5, controller_units=8)
    scores = experiments.evaluate_by_instance(lstm, omniglot, 5, 10, n_episodes=3)
    assert list(scores) == list(papers.INSTANCES)
    assert all(0.0 <= s.mean <= 1.0 and s.n == 3 for s in scores.values())


def test_machine_description_names_the_cpu():
    """Records compare seconds per step across runs, so they say which CPU measured them."""
    machine = records.machine_description()
    assert isinstance(machine["cpu_model"], str) and machine["cpu_model"]
    assert machine["cpu_count"] >= 1
