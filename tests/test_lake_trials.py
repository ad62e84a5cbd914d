"""metalearn_helpers.lake_trials: Lake et al.'s 400 official one-shot trials (all_runs.zip):
decoding, where each drawing comes from, the demo's scoring, intervals, episodes, and the
loader's discipline (offline folder, checksum, download from a local server only)."""

from __future__ import annotations

import shutil
import zipfile

import numpy as np
import pytest

from metalearn_helpers import lake_trials as lt
from metalearn_helpers.omniglot import ENV_DATA_DIR, ENV_OMNIGLOT_DIR, OmniglotError


@pytest.fixture(scope="module")
def trials(trials_dir):
    return lt.load_lake_trials(trials_dir)


@pytest.fixture
def no_env(monkeypatch, tmp_path):
    """No METALEARN_OMNIGLOT_DIR, and an empty METALEARN_DATA_DIR as the cache folder."""
    monkeypatch.delenv(ENV_OMNIGLOT_DIR, raising=False)
    cache = tmp_path / "data_dir"
    cache.mkdir()
    monkeypatch.setenv(ENV_DATA_DIR, str(cache))
    return cache


# --- The decoded trials -----------------------------------------------------------------------

def test_shapes_and_answers(trials):
    assert trials.training.shape == trials.test.shape == (20, 20, 28, 28)
    assert trials.training.dtype == np.uint8 and trials.training.max() == 255
    assert np.median(trials.test) == 0  # inverted: paper 0, ink 255
    assert trials.runs[0] == "run01" and trials.runs[-1] == "run20"
    # Each run's 20 test items name each of its 20 training classes once.
    assert all(sorted(row) == list(range(20)) for row in trials.answers.tolist())
    # run01/class_labels.txt: "run01/test/item01.png run01/training/class08.png"
    assert trials.answers[0, 0] == 7


def test_episode_is_the_run(trials):
    episode = trials.episode(3)
    assert episode.support_x.shape == episode.query_x.shape == (20, 28, 28, 1)
    assert episode.support_y.tolist() == list(range(20))
    assert episode.query_y.tolist() == trials.answers[3].tolist()
    assert episode.support_x.dtype == np.float32 and episode.support_x.max() == 1.0
    np.testing.assert_array_equal(episode.query_x[..., 0] * 255, trials.test[3])


def test_every_drawing_is_an_evaluation_drawing(trials, omniglot):
    located = lt.locate_trials(trials, omniglot)
    assert set(omniglot.splits[located["training_character"].ravel()]) == {"evaluation"}
    # Two runs in each of 10 evaluation alphabets, all characters of a run from its alphabet.
    alphabets = located["alphabet"].tolist()
    assert len(set(alphabets)) == 10 and all(alphabets.count(a) == 2 for a in alphabets)
    for part in ("training", "test"):
        assert (omniglot.alphabets[located[f"{part}_character"]]
                == located["alphabet"][:, None]).all()
        drawers = located[f"{part}_drawer"]
        assert (drawers == drawers[:, :1]).all()  # one drawer per run and part
    assert (located["training_drawer"][:, 0] != located["test_drawer"][:, 0]).all()
    # The answers point at the test item's own character.
    for run in range(20):
        np.testing.assert_array_equal(
            located["training_character"][run][trials.answers[run]], located["test_character"][run])


def test_locate_refuses_other_sizes(trials, omniglot):
    small = lt.LakeTrials(trials.training[..., :20, :20], trials.test, trials.answers, trials.runs)
    with pytest.raises(ValueError, match="same size"):
        lt.locate_trials(small, omniglot)


# --- Scoring ----------------------------------------------------------------------------------

def test_perfect_and_wrong_predictions(trials):
    perfect = lt.trial_predictions(lambda e: e.query_y, trials)
    assert lt.error_summary(perfect != trials.answers)["errors"] == 0
    shifted = lt.trial_predictions(lambda e: (e.query_y + 1) % 20, trials)
    summary = lt.error_summary(shifted != trials.answers)
    assert (summary["errors"], summary["trials"], summary["error"]) == (400, 400, 100.0)


def test_hausdorff_on_the_first_run(trials_dir):
    # Lake's demo method on 105x105 drawings; it makes 38.75 % errors over all 20 runs (the
    # demo says 38.8 %), 9 of 20 on run01. Two test items here, to stay fast.
    full = lt.load_lake_trials(trials_dir, image_size=105)
    episode = full.episode(0)
    small = type(episode)(episode.support_x, episode.support_y, episode.query_x[:2],
                          episode.query_y[:2])
    assert lt.hausdorff_predict(small).shape == (2,)
    a = lt.ink_points(episode.support_x[0, ..., 0])
    assert lt.modified_hausdorff_distance(a, a) == 0.0
    # From {(0, 0), (0, 10)} to {(0, 0)}: mean nearest distance 5; back: 0. The larger: 5.
    assert lt.modified_hausdorff_distance(np.array([[0.0, 0.0], [0.0, 10.0]]),
                                          np.array([[0.0, 0.0]])) == 5.0


@pytest.mark.parametrize("successes, n, low, high", [(0, 10, 0.0, 0.2775), (5, 10, 0.2366, 0.7634),
                                                     (17, 400, 0.0267, 0.0670)])
def test_wilson_interval(successes, n, low, high):
    assert lt.wilson_interval(successes, n) == pytest.approx((low, high), abs=1e-4)


def test_error_summary_intervals():
    wrong = np.zeros((20, 20), bool)
    wrong[:10, 0] = True  # 10 errors, in 10 runs
    summary = lt.error_summary(wrong)
    assert summary["error"] == 2.5 and summary["per_run_error"][:2] == [5.0, 5.0]
    low, high = summary["wilson95"]
    assert low < 2.5 < high
    per_run = np.array(summary["per_run_error"])
    assert summary["ci95_runs"] == pytest.approx(1.96 * per_run.std(ddof=1) / np.sqrt(20))


# --- Episodes between random and official ------------------------------------------------------

def test_episodes_with_drawer_pairs(omniglot):
    groups = [np.arange(659, 700), np.arange(700, 740)]
    tasks = lt.WithinAlphabetEpisodes(omniglot, groups, drawer_pairs=True, drawers=range(8))
    for seed in range(5):
        episode = tasks.sample(seed)
        drawers = episode.info["drawings"]
        assert (drawers == drawers[0]).all() and drawers[0, 0] != drawers[0, 1]
        assert set(drawers.ravel()) <= set(range(8))
        chosen = episode.info["classes"]
        assert len(set(chosen)) == 20 and any(set(chosen) <= set(g) for g in groups)
        np.testing.assert_array_equal(episode.query_x[..., 0] * 255,
                                      omniglot.images[chosen, drawers[:, 1]])


def test_episodes_with_fixed_pairs_and_per_class_drawers(omniglot):
    groups = [np.arange(659, 679)]
    fixed = lt.WithinAlphabetEpisodes(omniglot, groups, pairs=[(4, 7)]).sample(0)
    assert fixed.info["drawings"].tolist() == [[4, 7]] * 20
    free = lt.WithinAlphabetEpisodes(omniglot, groups).sample(0)
    assert len({tuple(d) for d in free.info["drawings"].tolist()}) > 1
    assert (free.info["drawings"][:, 0] != free.info["drawings"][:, 1]).all()


@pytest.mark.parametrize("kwargs, message", [
    (dict(groups=[np.arange(10)]), "at least n_way=20"),
    (dict(groups=[np.arange(20)], drawers=[3]), "at least two of 0..19"),
    (dict(groups=[np.arange(20)], drawers=[0, 25]), "at least two of 0..19"),
    (dict(groups=[np.arange(20)], pairs=[(0, 1), (2, 3)]), "one \\(support, query\\) drawer pair"),
])
def test_episodes_bad_arguments(omniglot, kwargs, message):
    with pytest.raises(ValueError, match=message):
        lt.WithinAlphabetEpisodes(omniglot, **kwargs)


# --- Finding, checking and downloading all_runs.zip -------------------------------------------

def test_env_dir_is_used(trials_dir, no_env, monkeypatch):
    monkeypatch.setenv(ENV_OMNIGLOT_DIR, str(trials_dir))
    assert lt.find_trials_zip(download=False) == trials_dir / "all_runs.zip"


def test_env_dir_without_the_zip(no_env, monkeypatch, tmp_path):
    monkeypatch.setenv(ENV_OMNIGLOT_DIR, str(tmp_path))
    with pytest.raises(OmniglotError,
                       match="METALEARN_OMNIGLOT_DIR points at .* lacks all_runs.zip"):
        lt.find_trials_zip()


def test_nothing_found_without_download(no_env):
    with pytest.raises(OmniglotError, match="Set METALEARN_OMNIGLOT_DIR to a folder holding "
                                            "all_runs.zip"):
        lt.load_lake_trials(download=False)


def test_corrupt_file_is_refused(trials_dir, tmp_path, tamper):
    shutil.copyfile(trials_dir / "all_runs.zip", tmp_path / "all_runs.zip")
    tamper(tmp_path / "all_runs.zip")
    with pytest.raises(OmniglotError, match="Checksum mismatch .*official release sha256 437c1e"):
        lt.load_lake_trials(tmp_path)


def test_decode_refuses_a_zip_without_runs(tmp_path):
    path = tmp_path / "all_runs.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("run01/class_labels.txt",
                         "run01/test/item01.png run01/training/class01.png\n")
    with pytest.raises(OmniglotError, match="must pair item01 ... item20"):
        lt.decode_trials(path)
    path.write_bytes(b"not a zip")
    with pytest.raises(OmniglotError, match="is corrupt"):
        lt.decode_trials(path)


def test_decode_refuses_bad_label_line(tmp_path):
    path = tmp_path / "all_runs.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("run01/class_labels.txt", "item01 class01\n")
    with pytest.raises(OmniglotError, match="cannot read the line 'item01 class01'"):
        lt.decode_trials(path)


def test_download(trials_server, trials_dir, tmp_path, network_guard):
    dest = tmp_path / "dest"
    assert lt.download_trials(dest, base_url=trials_server + "good/") == dest
    assert [p.name for p in dest.iterdir()] == ["all_runs.zip"]  # no temporary folder left
    assert (dest / "all_runs.zip").read_bytes() == (trials_dir / "all_runs.zip").read_bytes()
    assert network_guard == []


def test_download_tampered_is_refused(trials_server, tmp_path):
    dest = tmp_path / "dest"
    with pytest.raises(OmniglotError, match="Checksum mismatch"):
        lt.download_trials(dest, base_url=trials_server + "tampered/")
    assert list(dest.iterdir()) == []


def test_download_missing(trials_server, tmp_path):
    dest = tmp_path / "dest"
    with pytest.raises(OmniglotError, match="Could not download .*empty/all_runs.zip"):
        lt.download_trials(dest, base_url=trials_server + "empty/")
    assert list(dest.iterdir()) == []


def test_find_downloads_into_cache_folder(trials_server, no_env, monkeypatch):
    real_download = lt.download_trials
    monkeypatch.setattr(lt, "download_trials",
                        lambda dest: real_download(dest, base_url=trials_server + "good/"))
    path = lt.find_trials_zip()
    assert path == no_env / "omniglot" / "all_runs.zip"
    assert lt.find_trials_zip(download=False) == path  # found in the cache next time


def test_default_download_goes_to_official_url(no_env, network_guard):
    with pytest.raises(OmniglotError, match="Could not download https://github.com/brendenlake/"
                                            "omniglot/raw/master/python/one-shot-classification/"
                                            "all_runs.zip"):
        lt.find_trials_zip()
    assert set(network_guard) == {"github.com"}
