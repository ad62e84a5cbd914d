"""Matching Networks: attention over the support set, hand-checked, and learning happens."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from metalearn_helpers.episodes import OmniglotEpisodes
from metalearn_helpers.matching import (MatchingNetwork, attention_class_probabilities,
                                        class_log_probabilities, cosine_similarities)
from metalearn_helpers.models import conv4
from metalearn_helpers.omniglot import split_characters
from metalearn_helpers.protonet import class_means, squared_distances
from metalearn_helpers.training import meta_train

FCE_SETTINGS = [dict(fce=False), dict(fce=True), dict(fce=True, fce_processing_steps=2)]


def tiny_matching(seed=0, norm="running", **kwargs):
    keras.utils.set_random_seed(seed)
    return MatchingNetwork(conv4(None, filters=8, downsample="maxpool", norm=norm), **kwargs)


def random_episode(n_way=3, k_shot=2, n_query=4, seed=0):
    """``support_x, support_y, query_x`` of random images."""
    rng = np.random.default_rng(seed)
    support_x = rng.random((n_way * k_shot, 28, 28, 1), dtype=np.float32)
    query_x = rng.random((n_way * n_query, 28, 28, 1), dtype=np.float32)
    return support_x, np.repeat(np.arange(n_way), k_shot).astype(np.int32), query_x


def identity_embedding():
    """Embeds a 2-D point as itself."""
    return keras.Sequential([keras.Input((2,)),
                             keras.layers.Dense(2, use_bias=False, kernel_initializer="identity")])


@pytest.mark.parametrize("kwargs", FCE_SETTINGS)
def test_shapes_and_attention_rows_sum_to_one(kwargs):
    matching = tiny_matching(**kwargs)
    support_x, support_y, query_x = random_episode()
    log_probs = np.asarray(matching.logits(support_x, support_y, query_x))
    attention = matching.attention(support_x, support_y, query_x)
    assert log_probs.shape == (12, 3) and attention.shape == (12, 6)
    np.testing.assert_allclose(np.exp(log_probs).sum(-1), 1, rtol=1e-5)
    np.testing.assert_allclose(attention.sum(-1), 1, rtol=1e-5)
    assert np.all(attention >= 0)
    # Eq. 1: the class probabilities are the attention summed over each class's examples.
    np.testing.assert_allclose(np.exp(log_probs), attention.reshape(12, 3, 2).sum(-1), rtol=1e-4)


def test_hand_checked_points():
    """Identity embedding on 2-D points: the attention logits are the cosine times the query's
    length (the authors' one-sided normalisation), and P(y) sums the softmax per class."""
    support_x = np.array([[1, 0], [0.6, 0.8], [0, 1], [-1, 0]], np.float32)
    support_y = np.array([0, 0, 1, 1], np.int32)
    query_x = np.array([[0.6, 0.8], [0, 2]], np.float32)
    cosines = np.array([[0.6, 1.0, 0.8, -0.6], [0, 0.8, 1, 0]])
    np.testing.assert_allclose(cosine_similarities(query_x, support_x), cosines, atol=1e-6)

    matching = MatchingNetwork(identity_embedding())
    logits = cosines * np.array([[1], [2]])  # query lengths 1 and 2
    expected = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    attention = matching.attention(support_x, support_y, query_x)
    np.testing.assert_allclose(attention, expected, rtol=1e-5)
    assert np.argmax(attention[0]) == 1  # the support point equal to the query wins
    probabilities = np.exp(matching.logits(support_x, support_y, query_x))
    np.testing.assert_allclose(probabilities, np.stack([expected[:, :2].sum(-1),
                                                        expected[:, 2:].sum(-1)], -1), rtol=1e-5)


def test_class_log_probabilities_are_the_log_of_eq_1_and_stable():
    rng = np.random.default_rng(0)
    logits, labels = rng.normal(size=(2, 5, 6)), np.tile([0, 1, 2, 2, 1, 0], (2, 1))
    np.testing.assert_allclose(
        np.exp(class_log_probabilities(logits, labels, 3)),
        attention_class_probabilities(tf.nn.softmax(logits), labels, 3), rtol=1e-10)
    # Where the softmax underflows to 0 for a whole class, the log stays finite and exact.
    extreme = class_log_probabilities(np.array([[1000.0, -1000.0, 0.0]]), [0, 1, 1], 2)
    np.testing.assert_allclose(extreme, [[0.0, -1000.0]], atol=1e-6)


def test_protonet_is_matching_with_class_means_and_euclidean_distance():
    """Attention over the class means with logits -squared distance gives ProtoNet's softmax."""
    rng = np.random.default_rng(1)
    support, queries = rng.normal(size=(6, 4)), rng.normal(size=(5, 4))
    labels = np.array([0, 0, 1, 1, 2, 2])
    prototypes = class_means(support, labels, 3)
    attention = tf.nn.softmax(-squared_distances(queries, prototypes))
    np.testing.assert_allclose(attention_class_probabilities(attention, np.arange(3), 3),
                               tf.nn.softmax(-squared_distances(queries, prototypes)), rtol=1e-12)


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _lstm_step(x, h, c, kernel, recurrent_kernel, bias):
    """One step of Keras' LSTM (gates in the order input, forget, cell, output)."""
    i, f, g, o = np.split(x @ kernel + h @ recurrent_kernel + bias, 4, axis=-1)
    c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
    return _sigmoid(o) * np.tanh(c), c


def _lstm_outputs(sequence, weights):
    h = c = np.zeros(sequence.shape[-1], np.float32)
    outputs = []
    for x in sequence:
        h, c = _lstm_step(x, h, c, *weights)
        outputs.append(h)
    return np.array(outputs)


def test_fce_follows_the_appendix_equations():
    """The full context embeddings written out in NumPy from the paper's appendix: g(x_i) =
    h_fwd_i + h_bwd_i + g'(x_i); h_k = LSTM(f'(x), [h_(k-1), r_(k-1)], c_(k-1)) + f'(x), with
    r_(k-1) the read of g(S) by softmax(h_(k-1) . g(x_i)), h_0 = f'(x), c_0 = 0, K steps."""
    keras.utils.set_random_seed(3)
    matching = MatchingNetwork(identity_embedding(), fce=True, fce_processing_steps=3)
    rng = np.random.default_rng(3)
    support_x, query_x = rng.normal(size=(4, 2)).astype(np.float32), rng.normal(
        size=(3, 2)).astype(np.float32)
    support_y = np.array([0, 1, 0, 1], np.int32)
    bilstm = matching.fce_layers["support_lstm"]
    forward, backward = ([w.numpy() for w in layer.weights]
                         for layer in (bilstm.forward_layer, bilstm.backward_layer))
    g = (support_x + _lstm_outputs(support_x, forward)
         + _lstm_outputs(support_x[::-1], backward)[::-1])
    cell = [w.numpy() for w in matching.fce_layers["query_lstm"].weights]
    h, c = query_x, np.zeros_like(query_x)
    for _ in range(3):
        read = np.asarray(tf.nn.softmax(h @ g.T)) @ g
        h_hat, c = _lstm_step(np.concatenate([query_x, read], -1), h, c, *cell)
        h = h_hat + query_x
    logits = np.linalg.norm(h, axis=-1, keepdims=True) * cosine_similarities(h, g)
    np.testing.assert_allclose(matching.attention(support_x, support_y, query_x),
                               tf.nn.softmax(logits), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("fce", [False, True])
def test_support_order_matters_only_with_fce(fce):
    """The paper's g is a bidirectional LSTM over the support set, so reordering the support set
    changes the embeddings; without FCE it only reorders the attention columns."""
    matching = tiny_matching(fce=fce)
    support_x, support_y, query_x = random_episode()
    order = np.array([5, 2, 0, 3, 1, 4])
    reordered = matching.attention(support_x[order], support_y[order], query_x)
    original = matching.attention(support_x, support_y, query_x)[:, order]
    assert np.allclose(reordered, original, atol=1e-6) != fce


@pytest.mark.parametrize("call", ["logits", "attention"])
def test_bad_episodes_raise_clear_errors(call):
    matching = tiny_matching()
    support_x, support_y, query_x = random_episode()
    method = getattr(matching, call)
    with pytest.raises(ValueError, match=r"class\(es\) \[1\] have none"):
        method(support_x, np.where(support_y == 1, 2, support_y).astype(np.int32), query_x)
    with pytest.raises(ValueError, match="query images have shape"):
        method(support_x, support_y, query_x[:, :14])


def test_cosine_similarities_of_different_embeddings_raise():
    with pytest.raises(ValueError, match="must come from the same embedding"):
        cosine_similarities(np.ones((3, 4)), np.ones((5, 6)))


@pytest.mark.parametrize("make_embedding,kwargs,error,match", [
    (lambda: (lambda x: x), {}, TypeError, "keras.Model"),
    (lambda: keras.Sequential([keras.layers.Dense(2)]), {}, ValueError, "built"),
    (lambda: conv4(None, filters=8, downsample="maxpool"), dict(fce_processing_steps=0),
     ValueError, "fce_processing_steps"),
])
def test_invalid_arguments(make_embedding, kwargs, error, match):
    with pytest.raises(error, match=match):
        MatchingNetwork(make_embedding(), **kwargs)


@pytest.fixture(scope="module")
def omniglot_train_and_val(omniglot):
    splits = split_characters(omniglot, "vinyals")
    return [OmniglotEpisodes(omniglot, splits[split], n_way=5, k_shot=1, n_query=5,
                             rotations=True) for split in ("train", "val")]


@pytest.mark.parametrize("fce", [False, True])
def test_five_iterations_beat_chance_on_omniglot(fce, omniglot_train_and_val):
    """Cheap integration test (in the spirit of learn2learn's): five meta-steps on real Omniglot
    5-way 1-shot episodes lift validation accuracy well above chance (20 %) and above the ~30 %
    of the untrained network. BatchStatNorm, so that the score does not depend on how far
    batch-norm running averages have caught up after five steps; Adam 1e-2 to make them count."""
    train, val = omniglot_train_and_val
    matching = tiny_matching(norm="batch_stat", fce=fce, meta_lr=1e-2)
    fce_before = [v.numpy() for layer in matching.fce_layers.values() for v in layer.weights]
    batches = train.batches(4, seed=0)
    for _ in range(5):
        matching.train_step(*next(batches).arrays())
    accuracy = np.mean([matching.score_episode(val.sample(1000 + i)) for i in range(10)])
    assert accuracy > 0.4
    fce_after = [v.numpy() for layer in matching.fce_layers.values() for v in layer.weights]
    assert len(fce_after) == (9 if fce else 0)  # two LSTMs of the BiLSTM + the attention LSTM
    assert all(not np.array_equal(a, b) for a, b in zip(fce_before, fce_after))


def test_fce_checkpoint_round_trip_through_meta_train(omniglot_train_and_val, tmp_path, capsys):
    train, _ = omniglot_train_and_val
    run = dict(meta_batch_size=1, run_dir=str(tmp_path), progress=False)
    first = tiny_matching(seed=0, fce=True)
    meta_train(first, train, n_steps=2, **run)
    second = tiny_matching(seed=1, fce=True)
    assert not all(np.array_equal(a.numpy(), b.numpy())
                   for a, b in zip(first.meta_variables, second.meta_variables))
    meta_train(second, train, n_steps=2, **run)  # nothing left to do: it only restores
    assert "resuming from step 2" in capsys.readouterr().out
    # Embedding, batch-norm averages, both FCE LSTMs, and Adam's step count and moments.
    for a, b in zip(first.meta_variables + first.meta_optimizer.variables,
                    second.meta_variables + second.meta_optimizer.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert int(second.meta_optimizer.iterations.numpy()) == 2
