"""Memory-augmented neural network (Santoro et al. 2016, arXiv 1605.06065): episodes as sequences,
LRUA memory addressing on hand-built states, input checks, checkpoints, and learning."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from metalearn_helpers.episodes import Episode, TaskFamily, as_rng
from metalearn_helpers.evaluation import ScoreWithCI, evaluate
from metalearn_helpers.mann import (MemoryAugmentedNetwork, cosine_similarity, episode_sequence,
                                    least_used, lru_write, presentation_index, read_weights,
                                    update_usage)
from metalearn_helpers.training import meta_train


class PatternEpisodes(TaskFamily):
    """Episodes shaped like ``OmniglotEpisodes(k_shot=n_instances, n_query=0)``: sorted by label,
    every drawing of a class the same random binary image (drawn anew for each episode)."""

    def __init__(self, n_way, n_instances, size=5):
        self.n_way, self.n_instances, self.size = n_way, n_instances, size

    def sample(self, seed=None):
        rng = as_rng(seed)
        classes = (rng.random((self.n_way, self.size, self.size)) < 0.5).astype(np.float32)
        x = np.repeat(classes, self.n_instances, axis=0)[..., None]
        y = np.repeat(np.arange(self.n_way), self.n_instances).astype(np.int32)
        return Episode(x, y, np.zeros((0, self.size, self.size, 1), np.float32),
                       np.zeros(0, np.int32))


def tiny(n_way=2, n_instances=4, **kwargs):
    settings = dict(image_size=5, controller_units=16, memory_slots=8, memory_width=6,
                    read_heads=2)
    return MemoryAugmentedNetwork(n_way, n_instances, **{**settings, **kwargs})


# -- sequences ------------------------------------------------------------------------------------
def test_episode_sequence_shifts_labels_by_one_step():
    n_way, n_instances = 3, 4
    y_sorted = np.repeat(np.arange(n_way), n_instances).astype(np.int32)
    x_sorted = np.broadcast_to(y_sorted[:, None, None, None], (12, 2, 2, 1)).astype(np.float32)
    x, y, previous = episode_sequence(x_sorted, y_sorted, n_way, seed=0)
    assert not np.array_equal(y, y_sorted)  # shuffled
    np.testing.assert_array_equal(np.bincount(y, minlength=n_way), [n_instances] * n_way)
    np.testing.assert_array_equal(x[:, 0, 0, 0], y)  # images moved with their labels
    np.testing.assert_array_equal(previous[0], np.zeros(n_way))
    np.testing.assert_array_equal(previous[1:], np.eye(n_way)[y[:-1]])
    again = episode_sequence(x_sorted, y_sorted, n_way, seed=0)[1]
    np.testing.assert_array_equal(again, y)  # deterministic for a seed


def test_presentation_index_counts_earlier_presentations():
    np.testing.assert_array_equal(presentation_index([2, 0, 2, 2, 0, 1]), [1, 1, 2, 3, 2, 1])
    np.testing.assert_array_equal(presentation_index([[0, 0], [1, 0]]), [[1, 2], [1, 1]])


# -- memory addressing ----------------------------------------------------------------------------
def test_read_weights_sum_to_one_and_favour_the_matching_slot():
    memory = tf.constant([[[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 0.0], [1.0, 1.0, 0.0]]])
    keys = tf.constant([[[0.0, 5.0, 0.0], [3.0, 0.0, 0.0]]])
    similarity = cosine_similarity(keys, memory).numpy()[0]
    np.testing.assert_allclose(similarity, [[0, 1, 0, 0.5 ** 0.5], [1, 0, 0, 0.5 ** 0.5]],
                               atol=1e-6)  # the erased (zero) slot has similarity 0
    weights = read_weights(keys, memory).numpy()[0]
    np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-6)
    assert list(weights.argmax(-1)) == [1, 0]
    np.testing.assert_allclose(weights, tf.nn.softmax(similarity).numpy(), rtol=1e-6)  # eq. 3


def test_lru_write_zeroes_and_fills_the_least_used_slots():
    """Usage [0.5, 0.1, 0.9, 0.3]: head 0 gets the least used slot (1), head 1 the second (3).
    With gates sigma(alpha) = 0 every head writes only there; slot 1 is erased first."""
    memory = tf.constant([[[1.0, 1.0], [7.0, 7.0], [2.0, 2.0], [3.0, 3.0]]])
    usage = tf.constant([[0.5, 0.1, 0.9, 0.3]])
    np.testing.assert_array_equal(least_used(usage, 2).numpy()[0],
                                  [[0, 1, 0, 0], [0, 0, 0, 1]])
    keys = tf.constant([[[0.5, -0.5], [0.25, 0.75]]])
    previous_reads = tf.constant([[[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]]])
    new, writes = lru_write(memory, keys, tf.zeros((1, 2)), previous_reads, usage)
    np.testing.assert_allclose(new.numpy()[0], [[1, 1], [0.5, -0.5], [2, 2], [3.25, 3.75]])
    np.testing.assert_array_equal(writes.numpy()[0], least_used(usage, 2).numpy()[0])
    # sigma(alpha) = 1: each head updates the slot it read last step; slot 1 is still erased.
    new, writes = lru_write(memory, keys, tf.ones((1, 2)), previous_reads, usage)
    np.testing.assert_allclose(new.numpy()[0], [[1.5, 0.5], [0, 0], [2.25, 2.75], [3, 3]])
    # In between, eq. 7 interpolates.
    _, writes = lru_write(memory, keys, tf.constant([[0.25, 0.5]]), previous_reads, usage)
    np.testing.assert_allclose(writes.numpy()[0], [[0.25, 0.75, 0, 0], [0, 0, 0.5, 0.5]])


def test_usage_decays_by_gamma_and_grows_with_access():
    usage = tf.constant([[1.0, 0.5, 0.0]])
    nothing = tf.zeros((1, 2, 3))
    np.testing.assert_allclose(update_usage(usage, nothing, nothing, 0.95).numpy(),
                               [[0.95, 0.475, 0.0]])
    reads = tf.constant([[[0.0, 0.0, 1.0], [0.5, 0.5, 0.0]]])
    writes = tf.constant([[[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]]])
    np.testing.assert_allclose(update_usage(usage, reads, writes, 0.95).numpy(),
                               [[1.45, 1.975, 1.0]])


def test_trace_shapes_and_first_write_goes_to_the_least_used_slots():
    keras.utils.set_random_seed(0)
    mann = tiny(3, 4)
    episode = PatternEpisodes(3, 4).sample(0)
    trace = mann.trace(episode.support_x, episode.support_y, seed=1)
    steps, heads, slots = 12, 2, 8
    assert trace["read_weights"].shape == (steps, heads, slots)
    assert trace["write_weights"].shape == (steps, slots)
    assert trace["usage"].shape == (steps, slots) and trace["memory"].shape == (steps, slots, 6)
    assert trace["probabilities"].shape == (steps, 3)
    np.testing.assert_allclose(trace["read_weights"].sum(-1), 1.0, rtol=1e-5)
    # Step 0: usage and read weights start at zero, so heads 0 and 1 write to slots 0 and 1 only.
    assert set(np.flatnonzero(trace["write_weights"][0])) == {0, 1}
    # From step 1 on, each head's write weights sum to one (eq. 7 mixes two distributions).
    np.testing.assert_allclose(trace["write_weights_per_head"][1:].sum(-1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(trace["instance"], presentation_index(trace["labels"]))
    lstm = tiny(3, 4, memory=False)
    assert "read_weights" not in lstm.trace(episode.support_x, episode.support_y, seed=1)


@pytest.mark.parametrize("memory", [True, False])
def test_prediction_at_step_t_sees_the_label_of_step_t_minus_1_only(memory):
    """Changing the label of step 5 leaves the predictions of steps 0..5 unchanged (no leak of
    the answer) and changes those from step 6 on (the label arrives one step later)."""
    keras.utils.set_random_seed(2)
    mann = tiny(3, 4, memory=memory)
    x, y, _ = episode_sequence(*PatternEpisodes(3, 4).sample(3).arrays()[:2], seed=0)
    changed = y.copy()
    changed[5] = (y[5] + 1) % 3
    a, b = mann.predict_sequences(np.stack([x, x]), np.stack([y, changed]))
    np.testing.assert_allclose(a[:6], b[:6], rtol=1e-5, atol=1e-6)
    assert np.abs(a[6:] - b[6:]).max(-1).min() > 0


@pytest.mark.parametrize("write", ["key", "add"])
def test_heads_write_their_key_or_a_separate_add_vector(write):
    """Step 0 writes into empty slots 0 and 1 (one per head, weight 1 - sigma(alpha)), so the
    memory after it holds what each head wrote, scaled: the key (eq. 8) or the add vector."""
    keras.utils.set_random_seed(0)
    mann = tiny(3, 4, write=write)
    assert ("adds" in mann.layers) == (write == "add") and write in repr(mann)
    episode = PatternEpisodes(3, 4).sample(0)
    trace = mann.trace(episode.support_x, episode.support_y, seed=1)
    x, y, _ = episode_sequence(episode.support_x, episode.support_y, 3, seed=1)
    images = tf.image.resize(x[:1], (5, 5), method="area")
    inputs = tf.concat([tf.reshape(images, (1, 25)), tf.zeros((1, 3))], -1)
    state = mann._initial_state(1)
    z = mann.input_gates(inputs) + mann.recurrent_gates(tf.concat([state[0], state[3]], -1))
    i, _, g, o = tf.split(z, 4, axis=-1)
    h = tf.sigmoid(o) * tf.tanh(tf.sigmoid(i) * tf.tanh(g))
    out = mann.heads(h).numpy()[0]
    keys = np.tanh(out[:12].reshape(2, 6))
    expected = keys if write == "key" else np.tanh(mann.adds(h).numpy()[0].reshape(2, 6))
    written = trace["memory"][0, :2] / trace["write_weights_per_head"][0, [0, 1], [0, 1]][:, None]
    np.testing.assert_allclose(written, expected, rtol=1e-4, atol=1e-6)
    if write == "add":
        assert np.abs(written - keys).max() > 0.1


# -- bad input ------------------------------------------------------------------------------------
def test_bad_sequences_are_refused():
    mann = tiny(3, 4)
    x, y = np.zeros((2, 12, 5, 5, 1), np.float32), np.tile(np.arange(3).repeat(4), (2, 1))
    with pytest.raises(ValueError, match=r"3 \* 4 = 12 steps"):
        mann.train_step(x[:, :10], y[:, :10])
    with pytest.raises(ValueError, match=r"labels must be in 0\.\.2 for n_way=3"):
        mann.train_step(x, y + 1)
    with pytest.raises(ValueError, match="n_query=0"):
        mann.train_step(x, y, np.zeros((2, 3, 5, 5, 1)), np.zeros((2, 3), np.int32))
    with pytest.raises(ValueError, match="one grayscale image per label"):
        mann.train_step(x[..., 0], y)
    with pytest.raises(ValueError, match=r"labels must be in 0\.\.1"):
        episode_sequence(x[0], y[0], n_way=2)
    with pytest.raises(ValueError, match="instances must be in 1..n_instances=4"):
        mann.score_by_instance(PatternEpisodes(3, 4).sample(0), instances=(1, 5))


def test_memory_too_small_for_the_episode_is_refused():
    with pytest.raises(ValueError, match=r"n_way \+ read_heads = 9 slots"):
        MemoryAugmentedNetwork(5, 10, memory_slots=8, read_heads=4)
    # Fewer slots than steps is allowed (later instances can update their class's slot)...
    MemoryAugmentedNetwork(5, 10, memory_slots=9, memory_width=4, controller_units=8)
    # ... and the LSTM baseline has no memory to check.
    MemoryAugmentedNetwork(5, 10, memory_slots=2, memory=False, controller_units=8)
    with pytest.raises(ValueError, match="gamma"):
        MemoryAugmentedNetwork(5, 10, gamma=1.5)
    with pytest.raises(ValueError, match='write must be "key"'):
        MemoryAugmentedNetwork(5, 10, write="erase")


# -- training -------------------------------------------------------------------------------------
@pytest.mark.parametrize("write", ["key", "add"])
def test_checkpoint_round_trip(tmp_path, write):
    tasks = PatternEpisodes(2, 4)

    def trained(n_steps):
        keras.utils.set_random_seed(1)
        mann = tiny(2, 4, write=write)
        meta_train(mann, tasks, n_steps=n_steps, meta_batch_size=4, run_dir=tmp_path,
                   checkpoint_every=2, progress=False)
        return mann

    first = trained(3)
    resumed = trained(3)  # restores the checkpoint at step 3, trains nothing
    assert int(resumed.shuffle_step.numpy()) == 3
    for a, b in zip(first.meta_variables, resumed.meta_variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    episode = tasks.sample(5)
    assert first.score_episode(episode) == resumed.score_episode(Episode(*episode.arrays()))


def test_training_lifts_accuracy_after_the_first_presentation_above_chance():
    """Cheap integration test: 2-way episodes of 4 instances (chance: 50 %). 150 small updates
    lift the accuracy on a class's 2nd-4th presentations above chance (an untrained network stays
    near it), which fails if training or the label inputs are broken. So early, the network
    exploits the episode's label statistics (each class appears 4 times); binding each drawing to
    its label in memory takes longer (with these sizes about 1,700 updates, after which the 2nd
    presentation is 100 % right). A class's first presentation can be at most 75 % right (50 %
    for the first class, the other label for the second), unless the label leaks."""
    keras.utils.set_random_seed(0)
    tasks = PatternEpisodes(2, 4)
    mann = tiny(2, 4, controller_units=32, meta_optimizer=keras.optimizers.Adam(1e-2))

    def later_instances():
        scores = evaluate(lambda e: mann.score_by_instance(e, (1, 2, 3, 4)), tasks, 100, seed=1,
                          progress=False)
        assert isinstance(scores, ScoreWithCI) and scores.values.shape == (100, 4)
        assert scores.mean[0] < 0.85
        return np.mean(scores.mean[1:])

    before = later_instances()
    for batch, _ in zip(tasks.batches(16, seed=0), range(150)):
        metrics = mann.train_step(*batch.arrays())
    assert np.isfinite(float(metrics["loss"]))
    assert before < 0.6 < later_instances()


def test_uniform_reads_ablation_spreads_every_read_and_is_undone_after():
    keras.utils.set_random_seed(0)
    mann = tiny(3, 4)
    episode = PatternEpisodes(3, 4).sample(0)
    before = mann.trace(episode.support_x, episode.support_y, seed=1)
    with mann.uniform_reads():
        ablated = mann.trace(episode.support_x, episode.support_y, seed=1)
    after = mann.trace(episode.support_x, episode.support_y, seed=1)
    np.testing.assert_allclose(ablated["read_weights"], 1 / 8, rtol=1e-6)
    assert np.abs(ablated["probabilities"] - before["probabilities"]).max() > 0
    np.testing.assert_allclose(after["probabilities"], before["probabilities"], rtol=1e-6)
    # Step 0 writes before it reads, so its writes do not depend on the reads.
    np.testing.assert_allclose(ablated["write_weights"][0], before["write_weights"][0])
    with pytest.raises(ValueError, match="no reads to ablate"):
        with tiny(3, 4, memory=False).uniform_reads():
            pass
