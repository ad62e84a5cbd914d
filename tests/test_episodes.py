"""metalearn_helpers.episodes: the Omniglot episode sampler and the sinusoid task family."""

from __future__ import annotations

import numpy as np
import pytest

from metalearn_helpers.episodes import OmniglotEpisodes, SinusoidTasks, episode_dataset
from metalearn_helpers.omniglot import split_characters


@pytest.fixture(scope="module")
def splits(omniglot):
    return split_characters(omniglot, "vinyals")


def stored_images(omniglot, episode, k_shot):
    """Rebuild an episode's support and query images from the stored data and ``info``."""
    info = episode.info
    images = np.stack([
        np.stack([np.rot90(omniglot.images[c, d], r) for d in drawings])
        for c, r, drawings in zip(info["classes"], info["rotations"], info["drawings"])
    ])[..., None].astype(np.float32) / 255.0
    size = images.shape[2:]
    return images[:, :k_shot].reshape(-1, *size), images[:, k_shot:].reshape(-1, *size)


def assert_same_episode(a, b):
    for x, y in zip(a.arrays(), b.arrays()):
        np.testing.assert_array_equal(x, y)
    assert a.info.keys() == b.info.keys()
    for key in a.info:
        np.testing.assert_array_equal(a.info[key], b.info[key])


def no_shared_image(support_x, query_x):
    s = support_x.reshape(len(support_x), -1)
    q = query_x.reshape(len(query_x), -1)
    return not (s[:, None, :] == q[None, :, :]).all(-1).any()


# --- Omniglot episodes ------------------------------------------------------------------------

def test_shapes_dtypes_and_labels(omniglot):
    tasks = OmniglotEpisodes(omniglot, n_way=5, k_shot=3, n_query=4)
    e = tasks.sample(0)
    assert e.support_x.shape == (15, 28, 28, 1) and e.query_x.shape == (20, 28, 28, 1)
    assert e.support_x.dtype == e.query_x.dtype == np.float32
    assert e.support_y.dtype == e.query_y.dtype == np.int32
    assert 0.0 <= e.support_x.min() and e.support_x.max() <= 1.0
    np.testing.assert_array_equal(e.support_y, np.repeat(np.arange(5), 3))
    np.testing.assert_array_equal(e.query_y, np.repeat(np.arange(5), 4))
    assert e.info["drawings"].shape == (5, 7)
    assert "5-way 3-shot 4-query, 1623 classes" in repr(tasks)


@pytest.mark.parametrize("rotations", [False, True])
def test_episode_matches_stored_images(omniglot, splits, rotations):
    tasks = OmniglotEpisodes(omniglot, splits["train"], n_way=20, k_shot=5, n_query=5,
                             rotations=rotations)
    for seed in range(5):
        e = tasks.sample(seed)
        support, query = stored_images(omniglot, e, 5)
        np.testing.assert_array_equal(e.support_x, support)
        np.testing.assert_array_equal(e.query_x, query)


@pytest.mark.parametrize("rotations", [False, True])
def test_classes_without_replacement(omniglot, rotations):
    # Few classes, so drawing with replacement would repeat one almost surely.
    tasks = OmniglotEpisodes(omniglot, np.arange(6), n_way=6 * (4 if rotations else 1),
                             k_shot=1, n_query=1, rotations=rotations)
    for seed in range(20):
        e = tasks.sample(seed)
        pairs = set(zip(e.info["classes"].tolist(), e.info["rotations"].tolist()))
        assert len(pairs) == tasks.n_way
        assert set(e.info["classes"].tolist()) == set(range(6))


def test_support_and_query_disjoint(omniglot):
    tasks = OmniglotEpisodes(omniglot, n_way=10, k_shot=5, n_query=15, rotations=True)
    for seed in range(10):
        e = tasks.sample(seed)
        drawings = e.info["drawings"]
        for row in drawings:
            assert len(set(row.tolist())) == 20  # 5 + 15 distinct drawings of 20
            assert not set(row[:5].tolist()) & set(row[5:].tolist())
        assert no_shared_image(e.support_x, e.query_x)


def test_label_balance_and_meaning(omniglot):
    tasks = OmniglotEpisodes(omniglot, n_way=7, k_shot=2, n_query=3)
    e = tasks.sample(3)
    assert np.bincount(e.support_y).tolist() == [2] * 7
    assert np.bincount(e.query_y).tolist() == [3] * 7
    # Label k is info["classes"][k]: every image of label k is a drawing of that character.
    for k, c in enumerate(e.info["classes"]):
        stored = omniglot.images[c].reshape(20, -1).astype(np.float32) / 255.0
        for img in np.concatenate([e.support_x[e.support_y == k], e.query_x[e.query_y == k]]):
            assert (stored == img.reshape(1, -1)).all(-1).any()


def test_labels_are_shuffled_across_episodes(omniglot):
    tasks = OmniglotEpisodes(omniglot, np.arange(5), n_way=5, k_shot=1, n_query=1)
    orders = {tuple(tasks.sample(seed).info["classes"].tolist()) for seed in range(20)}
    assert len(orders) > 1


def test_determinism(omniglot):
    tasks = OmniglotEpisodes(omniglot, n_way=5, k_shot=1, n_query=5, rotations=True)
    assert_same_episode(tasks.sample(42), tasks.sample(42))
    a, b = tasks.sample(42), tasks.sample(43)
    assert not np.array_equal(a.support_x, b.support_x)
    # A Generator is consumed: consecutive draws differ, a fresh one with the seed repeats.
    rng = np.random.default_rng(7)
    first, second = tasks.sample(rng), tasks.sample(rng)
    assert not np.array_equal(first.support_x, second.support_x)
    assert_same_episode(first, tasks.sample(np.random.default_rng(7)))


def test_within_alphabet(omniglot, splits):
    tasks = OmniglotEpisodes(omniglot, splits["test"], n_way=20, k_shot=1, n_query=1,
                             within_alphabet=True)
    seen = set()
    for seed in range(30):
        alphabets = set(omniglot.alphabets[tasks.sample(seed).info["classes"]])
        assert len(alphabets) == 1
        seen |= alphabets
    assert len(seen) > 3  # the alphabet is drawn too, not fixed


def test_within_alphabet_with_rotations(omniglot):
    # Tifinagh (55 characters) is the only alphabet with more than 4 x 52 classes.
    tasks = OmniglotEpisodes(omniglot, n_way=209, k_shot=1, n_query=0, rotations=True,
                             within_alphabet=True)
    e = tasks.sample(0)
    assert set(omniglot.alphabets[e.info["classes"]]) == {"Tifinagh"}
    assert len(set(zip(e.info["classes"].tolist(), e.info["rotations"].tolist()))) == 209
    assert e.query_x.shape == (0, 28, 28, 1)


def test_rotations_really_rotate(omniglot):
    tasks = OmniglotEpisodes(omniglot, n_way=20, k_shot=1, n_query=0, rotations=True)
    assert len(tasks.classes) == 4 * 1623
    e = tasks.sample(1)
    rotations = e.info["rotations"]
    assert set(rotations.tolist()) == {0, 1, 2, 3}  # this seed shows every quarter turn
    for img, c, r, d in zip(e.support_x, e.info["classes"], rotations, e.info["drawings"][:, 0]):
        stored = omniglot.images[c, d].astype(np.float32) / 255.0
        np.testing.assert_array_equal(img[..., 0], np.rot90(stored, r))
        if r != 0:
            assert not np.array_equal(img[..., 0], stored)


def test_no_rotations_means_upright(omniglot):
    tasks = OmniglotEpisodes(omniglot, n_way=20, k_shot=1, n_query=0)
    e = tasks.sample(1)
    assert not e.info["rotations"].any()
    for img, c, d in zip(e.support_x, e.info["classes"], e.info["drawings"][:, 0]):
        np.testing.assert_array_equal(img[..., 0], omniglot.images[c, d] / np.float32(255))


def test_test_split_5way_1shot_15query(omniglot, splits):
    tasks = OmniglotEpisodes(omniglot, splits["test"], n_way=5, k_shot=1, n_query=15)
    test = set(splits["test"].tolist())
    for seed in range(5):
        e = tasks.sample(seed)
        assert e.support_x.shape == (5, 28, 28, 1) and e.query_x.shape == (75, 28, 28, 1)
        assert len(set(e.info["classes"].tolist())) == 5
        assert set(e.info["classes"].tolist()) <= test
        assert set(omniglot.splits[e.info["classes"]]) == {"evaluation"}
        assert no_shared_image(e.support_x, e.query_x)


def test_batches(omniglot):
    tasks = OmniglotEpisodes(omniglot, n_way=5, k_shot=2, n_query=3)
    batches = tasks.batches(4, seed=11)
    b1, b2 = next(batches), next(batches)
    assert b1.support_x.shape == (4, 10, 28, 28, 1) and b1.query_x.shape == (4, 15, 28, 28, 1)
    assert b1.support_y.shape == (4, 10) and b1.query_y.shape == (4, 15)
    assert b1.info["classes"].shape == (4, 5) and b1.info["drawings"].shape == (4, 5, 5)
    assert not np.array_equal(b1.support_x, b2.support_x)
    again = tasks.batches(4, seed=11)
    assert_same_episode(b1, next(again))
    assert_same_episode(b2, next(again))
    # The episodes of a batch are those of one generator seeded the same way.
    rng = np.random.default_rng(11)
    for i in range(4):
        np.testing.assert_array_equal(b1.support_x[i], tasks.sample(rng).support_x)
    assert not np.array_equal(next(tasks.batches(4, seed=12)).support_x, b1.support_x)


def test_episode_dataset(omniglot):
    import tensorflow as tf

    tasks = OmniglotEpisodes(omniglot, n_way=5, k_shot=1, n_query=2)
    dataset = episode_dataset(tasks, meta_batch_size=3, seed=5)
    assert [tuple(s.shape) for s in dataset.element_spec] == [
        (3, 5, 28, 28, 1), (3, 5), (3, 10, 28, 28, 1), (3, 10)]
    assert [s.dtype for s in dataset.element_spec] == [tf.float32, tf.int32] * 2
    first = [[t.numpy() for t in batch] for batch in dataset.take(2)]
    second = [[t.numpy() for t in batch] for batch in dataset.take(2)]
    expected = tasks.batches(3, seed=5)
    for a, b in zip(first, second):
        reference = next(expected).arrays()
        for x, y, z in zip(a, b, reference):
            np.testing.assert_array_equal(x, y)
            np.testing.assert_array_equal(x, z)
    other = next(iter(episode_dataset(tasks, meta_batch_size=3, seed=6)))[0].numpy()
    assert not np.array_equal(other, first[0][0])


@pytest.mark.parametrize("kwargs, error, fragment", [
    (dict(n_way=424), ValueError, "more than the 423 classes available (423 characters)"),
    (dict(n_way=1693, rotations=True), ValueError, "423 characters x 4 rotations"),
    (dict(k_shot=5, n_query=16), ValueError, "k_shot + n_query <= 20"),
    (dict(n_way=0), ValueError, "n_way must be at least 1, got 0"),
    (dict(k_shot=-1), ValueError, "k_shot must be at least 1"),
    (dict(n_query=-1), ValueError, "n_query must be at least 0"),
    (dict(n_way=5.0), TypeError, "n_way must be an int, got float"),
    (dict(k_shot=True), TypeError, "k_shot must be an int, got bool"),
    (dict(n_query=2.5), TypeError, "n_query must be an int, got float 2.5"),
    (dict(n_query=False), TypeError, "n_query must be an int, got bool"),
    (dict(n_way=48, within_alphabet=True), ValueError,
     "n_way=48 is impossible within one alphabet: the largest alphabet here has 47 classes"),
    (dict(n_way=189, within_alphabet=True, rotations=True), ValueError,
     "largest alphabet here has 188 classes (with rotations)"),
])
def test_bad_requests(omniglot, splits, kwargs, error, fragment):
    sizes = dict(n_way=5, k_shot=1, n_query=1)
    sizes.update(kwargs)
    with pytest.raises(error) as raised:
        OmniglotEpisodes(omniglot, splits["test"], **sizes)
    assert fragment in str(raised.value)


def test_bad_characters(omniglot):
    with pytest.raises(ValueError, match="non-empty 1-D array"):
        OmniglotEpisodes(omniglot, [], n_way=5, k_shot=1, n_query=1)


def test_numpy_int_sizes_accepted(omniglot):
    tasks = OmniglotEpisodes(omniglot, n_way=np.int64(3), k_shot=np.int32(1),
                             n_query=np.int64(1))
    assert tasks.sample(0).support_x.shape == (3, 28, 28, 1)


@pytest.mark.parametrize("size, error", [(0, ValueError), (-2, ValueError),
                                         (2.0, TypeError), (True, TypeError)])
def test_bad_meta_batch_size(omniglot, size, error):
    tasks = OmniglotEpisodes(omniglot, n_way=2, k_shot=1, n_query=1)
    with pytest.raises(error, match="meta_batch_size must be"):
        next(tasks.batches(size, seed=0))


# --- Sinusoids --------------------------------------------------------------------------------

def test_sinusoid_shapes_and_function():
    tasks = SinusoidTasks(k_shot=5, n_query=7)
    for seed in range(50):
        e = tasks.sample(seed)
        assert e.support_x.shape == e.support_y.shape == (5, 1)
        assert e.query_x.shape == e.query_y.shape == (7, 1)
        assert all(a.dtype == np.float32 for a in e.arrays())
        amplitude, phase = float(e.info["amplitude"]), float(e.info["phase"])
        assert 0.1 <= amplitude <= 5.0 and 0.0 <= phase <= np.pi
        for x, y in ((e.support_x, e.support_y), (e.query_x, e.query_y)):
            assert np.all((-5.0 <= x) & (x <= 5.0))
            np.testing.assert_allclose(y, amplitude * np.sin(x.astype(np.float64) - phase),
                                       atol=1e-5)


def test_sinusoid_ranges_are_used():
    tasks = SinusoidTasks(k_shot=50, n_query=1, amplitude=(2.0, 2.0), phase=(0.5, 0.5),
                          x_range=(0.0, 1.0))
    e = tasks.sample(0)
    assert e.info["amplitude"] == np.float32(2.0) and e.info["phase"] == np.float32(0.5)
    assert e.support_x.min() >= 0.0 and e.support_x.max() <= 1.0
    np.testing.assert_allclose(e.support_y, 2.0 * np.sin(e.support_x - 0.5), atol=1e-6)


def test_sinusoid_parameters_spread():
    tasks = SinusoidTasks()
    amplitudes = np.array([tasks.sample(s).info["amplitude"] for s in range(300)])
    phases = np.array([tasks.sample(s).info["phase"] for s in range(300)])
    assert amplitudes.min() < 0.6 and amplitudes.max() > 4.5
    assert phases.min() < 0.3 and phases.max() > np.pi - 0.3


def test_sinusoid_determinism_and_batches():
    tasks = SinusoidTasks(k_shot=10, n_query=10)
    assert_same_episode(tasks.sample(3), tasks.sample(3))
    assert not np.array_equal(tasks.sample(3).support_x, tasks.sample(4).support_x)
    b = next(tasks.batches(25, seed=0))
    assert b.support_x.shape == (25, 10, 1) and b.query_y.shape == (25, 10, 1)
    assert b.info["amplitude"].shape == (25,)
    assert_same_episode(b, next(tasks.batches(25, seed=0)))


def test_sinusoid_dataset():
    tasks = SinusoidTasks(k_shot=4, n_query=6)
    batch = next(iter(episode_dataset(tasks, meta_batch_size=8, seed=1)))
    assert [tuple(t.shape) for t in batch] == [(8, 4, 1), (8, 4, 1), (8, 6, 1), (8, 6, 1)]
    for x, y in zip(batch, next(tasks.batches(8, seed=1)).arrays()):
        np.testing.assert_array_equal(x.numpy(), y)


@pytest.mark.parametrize("kwargs, error, fragment", [
    (dict(amplitude=(5.0, 0.1)), ValueError, "amplitude must be (low, high) with low <= high"),
    (dict(phase=(np.pi, 0.0)), ValueError, "phase must be (low, high)"),
    (dict(x_range=(5.0, -5.0)), ValueError, "x_range must be (low, high)"),
    (dict(amplitude=(np.nan, 1.0)), ValueError, "amplitude must be (low, high)"),
    (dict(k_shot=0), ValueError, "k_shot must be at least 1"),
    (dict(n_query=-3), ValueError, "n_query must be at least 1"),
    (dict(k_shot=2.5), TypeError, "k_shot must be an int"),
    (dict(n_query=True), TypeError, "n_query must be an int"),
])
def test_sinusoid_bad_arguments(kwargs, error, fragment):
    with pytest.raises(error) as raised:
        SinusoidTasks(**kwargs)
    assert fragment in str(raised.value)
