"""Prototypical Networks (Snell et al. 2017, arXiv 1703.05175) and the episode checks every
metric-based learner relies on."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from metalearn_helpers.episodes import Episode, OmniglotEpisodes, check_episode
from metalearn_helpers.models import conv4
from metalearn_helpers.omniglot import split_characters
from metalearn_helpers.protonet import ProtoNet, class_means, squared_distances
from metalearn_helpers.training import meta_train


def test_class_means_are_per_class_averages_in_any_order():
    embeddings = tf.constant([[1.0, 0.0], [3.0, 2.0], [0.0, 4.0], [5.0, 0.0]])
    labels = tf.constant([1, 0, 1, 0])
    np.testing.assert_allclose(class_means(embeddings, labels, 2), [[4.0, 1.0], [0.5, 2.0]])


def test_squared_distances_by_hand():
    queries = tf.constant([[0.0, 0.0], [1.0, 1.0]])
    prototypes = tf.constant([[3.0, 4.0], [1.0, 0.0]])
    np.testing.assert_allclose(squared_distances(queries, prototypes), [[25.0, 1.0], [13.0, 1.0]])


def test_mismatched_embedding_sizes_are_refused():
    with pytest.raises(ValueError, match="same embedding"):
        squared_distances(tf.zeros((3, 64)), tf.zeros((5, 32)))


def test_identity_embedding_is_a_nearest_class_mean_classifier():
    """With a fixed identity embedding, ProtoNet's logits are minus the squared distances to the
    class means, so a query next to a class's mean is given that class."""
    embedding = keras.Sequential([keras.Input((1, 1, 2)), keras.layers.Flatten()])
    embedding.add(keras.layers.Dense(2, use_bias=False, kernel_initializer="identity"))
    protonet = ProtoNet(embedding)
    support_x = np.array([[0, 0], [0, 2], [10, 10]], np.float32).reshape(3, 1, 1, 2)
    support_y = np.array([0, 0, 1])
    query_x = np.array([[0, 1], [9, 9]], np.float32).reshape(2, 1, 1, 2)
    logits = protonet.logits(support_x, support_y, query_x).numpy()
    np.testing.assert_allclose(logits, [[0.0, -181.0], [-145.0, -2.0]])


@pytest.mark.parametrize("support_y,query_x_shape,query_y,match", [
    ([0, 0, 2], (4, 28, 28, 1), None, r"class\(es\) \[1\] have none"),
    ([0, 1, 1], (4, 28, 28, 3), None, "query images have shape"),
    ([0, 1, -1], (4, 28, 28, 1), None, "labels must be"),
    ([0, 1, 1], (4, 28, 28, 1), [0, 1, 2, 0], r"query labels must be in 0\.\.1"),
    ([0, 1], (4, 28, 28, 1), None, "3 images but support_y has 2"),
])
def test_check_episode_names_what_is_wrong(support_y, query_x_shape, query_y, match):
    with pytest.raises(ValueError, match=match):
        check_episode(np.zeros((3, 28, 28, 1)), np.array(support_y), np.zeros(query_x_shape),
                      None if query_y is None else np.array(query_y))


def test_check_episode_with_n_way_finds_an_absent_last_class():
    with pytest.raises(ValueError, match=r"\[2\] have none"):
        check_episode(np.zeros((2, 4)), np.array([0, 1]), np.zeros((1, 4)), n_way=3)
    assert check_episode(np.zeros((2, 4)), np.array([1, 0]), np.zeros((1, 4))) == 2


def test_protonet_refuses_bad_episodes_and_models():
    protonet = ProtoNet(conv4(None, filters=8, downsample="maxpool", norm="running"))
    with pytest.raises(ValueError, match="needs at least one support example"):
        protonet.logits(np.zeros((2, 28, 28, 1)), np.array([0, 2]), np.zeros((3, 28, 28, 1)))
    with pytest.raises(TypeError, match="keras.Model"):
        ProtoNet(lambda x: x)


@pytest.fixture(scope="module")
def omniglot_splits(omniglot):
    return omniglot, split_characters(omniglot, "vinyals")


def test_protonet_learns_from_episodes(omniglot_splits):
    """Cheap integration test. Class means of random convolutional features already reach about
    50 % on 5-way 1-shot (chance: 20 %) and the first few updates lower that, so train for 60
    small 20-way episodes: unseen characters are then classified clearly better than that."""
    data, split = omniglot_splits
    keras.utils.set_random_seed(0)
    protonet = ProtoNet(conv4(None, filters=16, downsample="maxpool", norm="running"))
    train = OmniglotEpisodes(data, split["train"], n_way=20, k_shot=1, n_query=5, rotations=True)
    for batch, _ in zip(train.batches(1, seed=0), range(60)):
        metrics = protonet.train_step(*batch.arrays())
    assert np.isfinite(float(metrics["loss"]))
    test = OmniglotEpisodes(data, split["test"], n_way=5, k_shot=1, n_query=5)
    accuracy = np.mean([protonet.score_episode(test.sample(seed)) for seed in range(20)])
    assert accuracy > 0.58


def test_protonet_checkpoint_round_trip_keeps_running_averages(omniglot_splits, tmp_path):
    data, split = omniglot_splits
    tasks = OmniglotEpisodes(data, split["train"], n_way=5, k_shot=1, n_query=2, rotations=True)

    def trained(n_steps):
        keras.utils.set_random_seed(1)
        protonet = ProtoNet(conv4(None, filters=8, downsample="maxpool", norm="running"))
        meta_train(protonet, tasks, n_steps=n_steps, meta_batch_size=1, run_dir=tmp_path,
                   checkpoint_every=2, progress=False)
        return protonet

    first = trained(3)
    resumed = trained(3)  # restores the checkpoint at step 3, trains nothing
    for a, b in zip(first.meta_variables, resumed.meta_variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    moving = [v for v in first.meta_variables if "moving_variance" in v.path]
    assert moving and not np.allclose(moving[0].numpy(), 1.0)  # running averages were trained
    episode = tasks.sample(5)
    assert first.score_episode(episode) == resumed.score_episode(Episode(*episode.arrays()))
