"""Baseline and Baseline++ (Chen et al. 2019): class batches with global labels, pre-training
through the shared loop, and test-time adaptation that touches nothing but a fresh head."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from metalearn_helpers.baseline import ClassBatches, CosineClassifier, FineTuneBaseline
from metalearn_helpers.episodes import OmniglotEpisodes, episode_dataset
from metalearn_helpers.models import conv4
from metalearn_helpers.omniglot import split_characters
from metalearn_helpers.training import meta_train


@pytest.fixture(scope="module")
def splits(omniglot):
    return split_characters(omniglot, "vinyals")


def tiny_baseline(n_classes, **kwargs):
    return FineTuneBaseline(conv4(None, filters=16, downsample="maxpool", norm="running"),
                            n_classes, **kwargs)


def test_labels_are_global_and_mean_one_character_and_rotation(omniglot, splits):
    characters = splits["train"][[3, 50, 400]]
    tasks = ClassBatches(omniglot, characters, batch_size=60)
    assert tasks.n_classes == 12
    for seed in range(3):
        e = tasks.sample(seed)
        assert e.support_x.shape == (60, 28, 28, 1) and e.support_x.dtype == np.float32
        assert e.query_x.shape == (0, 28, 28, 1) and e.query_y.shape == (0,)
        # label i is always the (i // 4)-th character turned i % 4 times, and so is its image
        np.testing.assert_array_equal(e.info["classes"], characters[e.support_y // 4])
        np.testing.assert_array_equal(e.info["rotations"], e.support_y % 4)
        for image, c, d, k in zip(e.support_x, e.info["classes"], e.info["drawings"],
                                  e.info["rotations"]):
            np.testing.assert_array_equal(image[..., 0],
                                          np.rot90(omniglot.images[c, d], k) / np.float32(255))
        assert len(set(zip(e.support_y, e.info["drawings"]))) == 60  # no image twice


def test_without_rotations_labels_index_characters(omniglot):
    tasks = ClassBatches(omniglot, np.array([7, 2, 9]), batch_size=20, rotations=False)
    e = tasks.sample(0)
    np.testing.assert_array_equal(e.info["classes"], np.array([7, 2, 9])[e.support_y])
    assert set(e.info["rotations"]) == {0}


def test_deterministic_per_seed(omniglot):
    tasks = ClassBatches(omniglot, np.arange(30), batch_size=16)
    a, b, c = tasks.sample(5), tasks.sample(5), tasks.sample(6)
    np.testing.assert_array_equal(a.support_x, b.support_x)
    np.testing.assert_array_equal(a.support_y, b.support_y)
    assert not np.array_equal(a.support_y, c.support_y)
    first, second = next(tasks.batches(2, seed=1)), next(tasks.batches(2, seed=1))
    assert first.support_x.shape == (2, 16, 28, 28, 1)
    np.testing.assert_array_equal(first.support_y, second.support_y)


def test_episode_dataset_accepts_class_batches(omniglot):
    tasks = ClassBatches(omniglot, np.arange(10), batch_size=8)
    shapes = [tuple(t.shape) for t in next(iter(episode_dataset(tasks, 3, seed=0)))]
    assert shapes == [(3, 8, 28, 28, 1), (3, 8), (3, 0, 28, 28, 1), (3, 0)]


@pytest.mark.parametrize("characters,batch_size,error,match", [
    ([0], 0, ValueError, "batch_size"),
    ([0], 2.5, TypeError, "batch_size"),
    ([0], 81, ValueError, "more than the 80 images"),
    ([1, 2, 1], 4, ValueError, "must not repeat"),
    ([], 4, ValueError, "non-empty"),
    ([0.0, 1.0], 4, ValueError, "integer"),
])
def test_class_batches_invalid_arguments(omniglot, characters, batch_size, error, match):
    with pytest.raises(error, match=match):
        ClassBatches(omniglot, np.array(characters), batch_size=batch_size)


def pretrain(omniglot, splits, head):
    """A few seconds of pre-training on 20 characters (80 classes) through the shared loop."""
    keras.utils.set_random_seed(0)
    tasks = ClassBatches(omniglot, splits["train"][:20], batch_size=16)
    baseline = tiny_baseline(tasks.n_classes, head=head, meta_lr=1e-2)
    history = meta_train(baseline, tasks, n_steps=100, meta_batch_size=2, progress=False,
                         log_every=20)
    accuracy = history.series("accuracy")[1]
    assert accuracy[-1] > 4 * accuracy[0] > 0
    return baseline


def scores_on_test_episodes(baseline, omniglot, splits, adaptations):
    test = OmniglotEpisodes(omniglot, splits["test"], n_way=5, k_shot=1, n_query=5)
    episodes = [test.sample(seed) for seed in range(30)]
    scores = {}
    for adaptation, distance in adaptations:
        baseline.adaptation, baseline.distance = adaptation, distance
        scores[adaptation, distance] = np.mean([baseline.score_episode(e) for e in episodes])
    return scores


def test_baseline_beats_an_untrained_embedding_after_brief_pretraining(omniglot, splits):
    """Held-out characters, 5-way 1-shot (chance 20 %). With the untrained embedding the
    centroids already score 41-47 % here (random convolutions are decent Omniglot features) and
    fine-tuning 20 % (its features are too small for a fresh head to move); after these few
    seconds of pre-training 68-71 %."""
    baseline = pretrain(omniglot, splits, "linear")
    adaptations = [("centroid", "euclidean"), ("centroid", "cosine"), ("linear", "euclidean")]
    scores = scores_on_test_episodes(baseline, omniglot, splits, adaptations)
    assert scores["centroid", "euclidean"] > 0.55 and scores["centroid", "cosine"] > 0.55, scores
    assert scores["linear", "euclidean"] > 0.45, scores


def test_baseline_plus_plus_pretrains_and_fine_tunes_a_cosine_head(omniglot, splits):
    """Baseline++: cosine heads in pre-training and at test time (fine-tuning scores 21 % with
    the untrained embedding, 51 % after pre-training)."""
    baseline = pretrain(omniglot, splits, "cosine")
    assert isinstance(baseline.head, CosineClassifier)
    scores = scores_on_test_episodes(baseline, omniglot, splits, [("linear", "euclidean")])
    assert scores["linear", "euclidean"] > 0.4, scores


@pytest.mark.parametrize("head", ["linear", "cosine"])
def test_fine_tuning_changes_only_the_new_head(omniglot, head):
    baseline = tiny_baseline(10, adaptation="linear", head=head)
    before = [v.numpy().copy() for v in baseline.meta_variables]
    e = OmniglotEpisodes(omniglot, n_way=5, k_shot=2, n_query=3).sample(0)
    logits = baseline.logits(*e.arrays()[:3])
    assert logits.shape == (15, 5)
    np.testing.assert_array_equal(logits, baseline.logits(*e.arrays()[:3]))  # seeded
    for variable, value in zip(baseline.meta_variables, before):  # batch-norm statistics too
        np.testing.assert_array_equal(variable.numpy(), value, err_msg=variable.path)
    # The new head does learn: on well-separated embeddings it fits the support set.
    support_y = tf.constant([0, 1, 2, 3, 4, 0, 1, 2, 3, 4])
    embeddings = 3.0 * tf.one_hot(support_y, 16) + 0.1
    kernel, vector = baseline.fine_tune(embeddings, support_y, 5)
    fresh_kernel, _ = baseline._fresh_head(16, 5)
    assert kernel.shape == (16, 5) and not np.allclose(kernel, fresh_kernel)
    np.testing.assert_array_equal(
        np.argmax(baseline._head_logits(embeddings, kernel, vector), -1), support_y)


def test_fine_tuning_is_torch_sgd_over_shuffled_mini_batches():
    """The graph loop against a plain NumPy transcription of the paper's code: epochs of shuffled
    mini-batches of 4 (the last one short), SGD with momentum, dampening and weight decay."""
    baseline = tiny_baseline(10, adaptation="linear", finetune_epochs=3)
    rng = np.random.default_rng(0)
    support, labels = rng.normal(size=(5, 16)).astype(np.float32), np.arange(5)
    kernel, bias = [p.numpy() for p in baseline._fresh_head(16, 5)]
    orders = tf.argsort(tf.random.stateless_uniform([3, 5], [0, 2]), axis=-1).numpy()
    velocity = None
    for order in orders:
        for batch in (order[:4], order[4:]):
            z, y = support[batch], labels[batch]
            logits = z @ kernel + bias
            p = np.exp(logits - logits.max(-1, keepdims=True))
            delta = (p / p.sum(-1, keepdims=True) - np.eye(5)[y]) / len(batch)
            grads = [z.T @ delta + 1e-3 * kernel, delta.sum(0) + 1e-3 * bias]
            velocity = grads if velocity is None else [0.9 * v + 0.1 * g
                                                       for v, g in zip(velocity, grads)]
            kernel, bias = kernel - 0.01 * velocity[0], bias - 0.01 * velocity[1]
    tuned = baseline.fine_tune(tf.constant(support), tf.constant(labels, tf.int32), 5)
    np.testing.assert_allclose(tuned[0], kernel, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(tuned[1], bias, rtol=1e-4, atol=1e-6)


def test_centroid_logits(omniglot):
    baseline = tiny_baseline(10)
    e = OmniglotEpisodes(omniglot, n_way=3, k_shot=2, n_query=2).sample(1)
    embedded = baseline.embedding(np.concatenate([e.support_x, e.query_x]), training=False)
    support, query = embedded[:6].numpy(), embedded[6:].numpy()
    prototypes = np.stack([support[e.support_y == c].mean(0) for c in range(3)])
    expected = -((query[:, None] - prototypes[None]) ** 2).sum(-1)
    np.testing.assert_allclose(baseline.logits(*e.arrays()[:3]), expected, rtol=1e-4, atol=1e-5)
    baseline.distance = "cosine"  # scaled by 2, Chen et al.'s scale for up to 200 classes
    query /= np.linalg.norm(query, axis=-1, keepdims=True)
    prototypes /= np.linalg.norm(prototypes, axis=-1, keepdims=True)
    np.testing.assert_allclose(baseline.logits(*e.arrays()[:3]), 2.0 * query @ prototypes.T,
                               rtol=1e-4, atol=1e-5)


def test_logits_rejects_a_class_without_support_example():
    baseline = tiny_baseline(10)
    images = np.zeros((3, 28, 28, 1), np.float32)
    with pytest.raises(ValueError, match=r"class\(es\) \[2\] have none"):
        baseline.logits(images, np.array([0, 1, 3]), images)
    baseline.adaptation = "nearest"
    with pytest.raises(ValueError, match="adaptation"):
        baseline.logits(images, np.array([0, 1, 2]), images)


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(adaptation="knn"), ValueError, "adaptation"),
    (dict(distance="manhattan"), ValueError, "distance"),
    (dict(head="mlp"), ValueError, "head"),
    (dict(finetune_epochs=0), ValueError, "finetune_epochs"),
    (dict(finetune_lr=-1.0), ValueError, "finetune_lr"),
])
def test_baseline_invalid_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        tiny_baseline(10, **kwargs)


def test_baseline_needs_a_vector_embedding():
    with pytest.raises(TypeError, match="keras.Model"):
        FineTuneBaseline(lambda x: x, 10)
    with pytest.raises(ValueError, match="vectors"):
        FineTuneBaseline(keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(4, 3)]),
                         10)
