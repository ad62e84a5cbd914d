"""MAML's sinusoid experiment: the pretrained baseline, test-time adaptation curves, step sizes."""

import numpy as np
import pytest
import tensorflow as tf

from metalearn_helpers import sinusoid
from metalearn_helpers.episodes import SinusoidTasks
from metalearn_helpers.training import meta_train


def test_pretrained_baseline_regresses_on_the_pooled_points_of_all_tasks():
    baseline = sinusoid.make_algorithm("pretrained", seed=0, init="keras")  # learns faster
    batch = next(SinusoidTasks(k_shot=3, n_query=4).batches(5, seed=0))
    x = np.concatenate([batch.support_x, batch.query_x], axis=1).reshape(-1, 1)
    y = np.concatenate([batch.support_y, batch.query_y], axis=1).reshape(-1, 1)
    expected = float(np.mean((baseline.model(x).numpy() - y) ** 2))
    loss = float(baseline.train_step(*batch.arrays())["loss"])
    assert loss == pytest.approx(expected, rel=1e-5)
    losses = [float(baseline.train_step(*batch.arrays())["loss"]) for _ in range(100)]
    assert losses[-1] < 0.8 * loss


def test_pretrained_baseline_trains_with_the_shared_loop():
    baseline = sinusoid.make_algorithm("pretrained", seed=0)
    history = meta_train(baseline, sinusoid.train_tasks(), n_steps=20, meta_batch_size=4,
                         log_every=10, progress=False)
    assert [r["step"] for r in history.train] == [10, 20]


def test_adaptation_outputs_match_maml_adapt_and_forward():
    maml = sinusoid.make_algorithm("maml", seed=0)
    episode = SinusoidTasks(k_shot=5, n_query=30).sample(3)
    outputs = sinusoid.adaptation_outputs(maml, episode.support_x, episode.support_y,
                                          episode.query_x, steps=2, lr=maml.inner_lr)
    assert outputs.shape == (3, 30, 1)
    np.testing.assert_allclose(outputs[0], maml.model(episode.query_x).numpy(), rtol=1e-5)
    fast = maml.adapt(tf.constant(episode.support_x), tf.constant(episode.support_y),
                      inner_steps=2)
    np.testing.assert_allclose(outputs[2], maml.forward(fast, episode.query_x).numpy(),
                               rtol=1e-4, atol=1e-6)
    mse_one_step = np.mean((outputs[1] - episode.query_y) ** 2)
    assert mse_one_step == pytest.approx(maml.score_episode(episode, inner_steps=1), rel=1e-4)


def test_adaptation_curves_use_the_same_tasks_for_every_method():
    maml, fomaml = (sinusoid.make_algorithm(n, seed=0) for n in ("maml", "fomaml"))
    a = sinusoid.adaptation_curves(maml, 5, 0.01, max_steps=3, n_tasks=4, progress=False)
    b = sinusoid.adaptation_curves(fomaml, 5, 0.01, max_steps=3, n_tasks=4, progress=False)
    assert a.shape == (4, 4)
    np.testing.assert_allclose(a, b, rtol=1e-5)  # same initial weights, same tasks
    table = sinusoid.mse_table(a, steps=(0, 3))
    assert table[3].mean == pytest.approx(a[:, 3].mean()) and table[0].n == 4


def test_a_diverging_step_size_is_never_chosen():
    baseline = sinusoid.make_algorithm("pretrained", seed=0)
    best, scores = sinusoid.tune_fine_tune_lr(baseline, 5, lrs=(0.01, 1e4), n_tasks=3)
    assert best == 0.01 and scores[1e4] == np.inf


def test_unknown_algorithm():
    with pytest.raises(ValueError, match="algorithm must be one of"):
        sinusoid.make_algorithm("protonet")


def test_diverged_tasks_are_counted_not_averaged():
    curves = np.array([[1.0, 0.5], [3.0, np.inf], [2.0, 1.5], [2.0, 1e3]])
    table = sinusoid.mse_table(curves, steps=(0, 1))
    assert table[0].mean == 2.0 and table[0].n == 4
    assert table[1].mean == 1.0 and table[1].n == 2
    rows = sinusoid.table_rows({5: curves}, steps=(0, 1))
    assert [r["diverged"] for r in rows] == [0, 2]
    assert sinusoid.record_table({"test": rows})[5, 1] == (1.0, pytest.approx(1.96 * np.std([0.5, 1.5], ddof=1) / np.sqrt(2)))


def test_overflowing_adaptation_gives_inf_not_an_error():
    maml = sinusoid.make_algorithm("maml", seed=0)
    curves = sinusoid.adaptation_curves(maml, 5, 1e4, max_steps=5, n_tasks=3, progress=False)
    assert np.isinf(curves[:, -1]).all() and np.isfinite(curves[:, 0]).all()


def test_paper_initialisation_is_small_and_seeded():
    a, b = (sinusoid.make_algorithm("maml", seed=3) for _ in range(2))
    kernels = [v.numpy() for v in a.model.trainable_variables if len(v.shape) == 2]
    biases = [v.numpy() for v in a.model.trainable_variables if len(v.shape) == 1]
    assert all(np.abs(k).max() <= 0.02 for k in kernels) and 0.005 < kernels[1].std() < 0.015
    assert all((bias == 0).all() for bias in biases)
    for v, w in zip(a.model.trainable_variables, b.model.trainable_variables):
        np.testing.assert_array_equal(v.numpy(), w.numpy())
    keras_init = sinusoid.make_algorithm("maml", seed=3, init="keras")
    assert np.abs(keras_init.model.trainable_variables[2].numpy()).max() > 0.1
    with pytest.raises(ValueError, match="init must be one of"):
        sinusoid.make_algorithm("maml", init="glorot")


def test_query_range_scores_the_other_half():
    maml = sinusoid.make_algorithm("maml", seed=0)
    same = sinusoid.adaptation_curves(maml, 5, 0.01, 1, n_tasks=3, progress=False,
                                      support_range=(0.0, 5.0))
    other = sinusoid.adaptation_curves(maml, 5, 0.01, 1, n_tasks=3, progress=False,
                                       support_range=(0.0, 5.0), query_range=(-5.0, 0.0))
    assert same.shape == other.shape == (3, 2) and not np.allclose(same, other)
    default = sinusoid.adaptation_curves(maml, 5, 0.01, 1, n_tasks=3, progress=False)
    tasks = SinusoidTasks(k_shot=5, n_query=sinusoid.N_QUERY)
    rng = np.random.default_rng(sinusoid.TEST_SEED)
    first = tasks.sample(rng)
    expected = np.mean((maml.model(first.query_x).numpy() - first.query_y) ** 2)
    assert default[0, 0] == pytest.approx(expected, rel=1e-5)


def test_run_names_keep_seeds_and_initialisations_apart():
    assert sinusoid.run_name("maml") == "sinusoid_maml"
    assert sinusoid.run_name("maml", "keras") == "sinusoid_maml_keras_init"
    assert sinusoid.run_name("maml", seed=1) == "sinusoid_maml_seed1"
    assert sinusoid.run_name("fomaml", "keras", 2) == "sinusoid_fomaml_keras_init_seed2"
    assert sinusoid.run_name("maml", inner_lr=0.001) == "sinusoid_maml_alpha0.001"
    assert sinusoid.run_name("maml", inner_lr=0.01) == "sinusoid_maml"  # the paper's alpha
