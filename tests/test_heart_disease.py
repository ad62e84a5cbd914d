"""metalearn_helpers.heart_disease: counts, checksums, finding and downloading the files,
preprocessing without leakage, hospital tasks and the Detrano 1989 anchor."""

from __future__ import annotations

import itertools
import shutil

import numpy as np
import pytest

from metalearn_helpers import heart_disease as hd
from metalearn_helpers.downloads import ENV_DATA_DIR, verify_file
from metalearn_helpers.heart_disease import HeartDiseaseError

NAMES = hd.HEART_DISEASE_FILES.files
SWISS = "processed.switzerland.data"


@pytest.fixture(scope="module")
def heart(heart_disease_dir):
    """The real four hospitals (never modify their arrays)."""
    return hd.load_heart_disease(root=heart_disease_dir, verbose=False)


@pytest.fixture
def no_env(monkeypatch, tmp_path):
    """No METALEARN_HEART_DISEASE_DIR, and an empty METALEARN_DATA_DIR as the cache folder."""
    monkeypatch.delenv(hd.ENV_HEART_DISEASE_DIR, raising=False)
    cache = tmp_path / "data_dir"
    cache.mkdir()
    monkeypatch.setenv(ENV_DATA_DIR, str(cache))
    return cache


def uci_copy(source, folder):
    """The files as UCI ships them: `?` for missing instead of the offline copy's `NaN`."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in NAMES:
        (folder / name).write_text((source / name).read_text().replace("NaN", "?"))
    return folder


# --- The data ---------------------------------------------------------------------------------

def test_counts_and_prevalence(heart, heart_disease_dir, capsys):
    assert heart.counts() == {"cleveland": 303, "hungary": 294, "switzerland": 123,
                              "long_beach": 200}
    assert sum(heart.counts().values()) == 920
    assert heart.prevalence() == pytest.approx({"cleveland": 139 / 303, "hungary": 106 / 294,
                                                "switzerland": 115 / 123,
                                                "long_beach": 149 / 200})
    hd.load_heart_disease(root=heart_disease_dir)
    out = capsys.readouterr().out
    assert "switzerland: 123 patients, 93.5 % with disease" in out and "total: 920" in out


def test_uci_format_reads_the_same(heart, heart_disease_dir, tmp_path):
    folder = uci_copy(heart_disease_dir, tmp_path / "uci")
    assert all(verify_file(hd.HEART_DISEASE_FILES, folder / n) == "UCI release" for n in NAMES)
    again = hd.load_heart_disease(root=folder, verbose=False)
    for hospital in hd.HOSPITALS:
        np.testing.assert_array_equal(again.records[hospital], heart.records[hospital])


@pytest.mark.parametrize("name", NAMES)
def test_verify_accepts_shared_files(heart_disease_dir, name):
    assert verify_file(hd.HEART_DISEASE_FILES, heart_disease_dir / name).startswith(
        "course's offline copy")


def test_tampered_file_is_refused(heart_disease_dir, tmp_path, tamper):
    folder = tmp_path / "copy"
    folder.mkdir()
    for name in NAMES:
        shutil.copyfile(heart_disease_dir / name, folder / name)
    tamper(folder / SWISS)
    with pytest.raises(HeartDiseaseError, match=f"Checksum mismatch for .*{SWISS}: md5") as e:
        hd.load_heart_disease(root=folder, verbose=False)
    for accepted in hd.ACCEPTED_CHECKSUMS[SWISS]["sha256"]:
        assert accepted in str(e.value)


# --- Reading and preprocessing ----------------------------------------------------------------

@pytest.mark.parametrize("text, message", [
    ("63,1,1,145,233,1,2,150,0,2.3,3,0,6\n", "line 1: 13 fields instead of 14"),
    ("63,1,1,145,233,1,2,150,0,2.3,3,0,6,0\n63,1,1,145,x,1,2,150,0,2.3,3,0,6,0\n",
     "line 2: could not convert string to float: 'x'"),
])
def test_read_records_refuses_bad_lines(tmp_path, text, message):
    path = tmp_path / "processed.cleveland.data"
    path.write_text(text)
    with pytest.raises(HeartDiseaseError, match=message):
        hd.read_records(path)


def test_wrong_patient_count_is_refused(heart_disease_dir, monkeypatch):
    real_read = hd.read_records
    monkeypatch.setattr(hd, "read_records", lambda path: real_read(path)[:-1])
    with pytest.raises(HeartDiseaseError, match="holds 302 patients, expected 303"):
        hd.load_heart_disease(root=heart_disease_dir, verbose=False)


def test_patients_encoding(heart):
    x, y = heart.patients("cleveland")
    assert x.shape == (303, len(hd.ENCODED_FEATURES)) == (303, 13)
    assert y.dtype == np.int64 and set(y.tolist()) == {0, 1}
    # First Cleveland patient: 63,1,1(typical angina),145,233,1,2(LV hypertrophy),150,0,2.3,...,0
    np.testing.assert_array_equal(x[0], [63, 1, 0, 0, 0, 145, 233, 1, 0, 1, 150, 0, 2.3])
    assert y[0] == 0 and y[1] == 1  # num 0 -> 0, num 2 -> 1
    np.testing.assert_array_equal(y, heart.records["cleveland"][:, -1] > 0)
    assert not np.isnan(x).any()  # Cleveland's only gaps were in the dropped ca and thal
    assert "slope" not in hd.ENCODED_FEATURES and "ca" not in hd.ENCODED_FEATURES


def test_missing_values(heart):
    chol = hd.ENCODED_FEATURES.index("chol")
    swiss, _ = heart.patients("switzerland")
    assert np.isnan(swiss[:, chol]).all()  # every Swiss chol is 0 in the file: missing
    assert (heart.records["switzerland"][:, hd.COLUMNS.index("chol")] == 0).all()
    long_beach, _ = heart.patients("long_beach")
    assert np.isnan(long_beach[:, chol]).sum() == 56  # 49 zeros + 7 '?'
    trestbps = hd.ENCODED_FEATURES.index("trestbps")
    assert np.isnan(long_beach[:, trestbps]).sum() == 57  # 56 '?' + one 0
    # A missing restecg leaves both of its one-hot columns missing.
    restecg = [hd.ENCODED_FEATURES.index(f) for f in hd.ENCODED_FEATURES if "restecg" in f]
    missing_restecg = np.isnan(heart.records["switzerland"][:, hd.COLUMNS.index("restecg")])
    assert missing_restecg.sum() == 1 and np.isnan(swiss[missing_restecg][:, restecg]).all()
    fractions = heart.missing_fraction("hungary")
    assert fractions["ca"] > 0.95 and fractions["thal"] > 0.85 and fractions["slope"] > 0.6
    assert heart.missing_fraction("switzerland")["chol"] == 1.0


def test_standardiser_is_fitted_on_training_hospitals_only(heart):
    task = hd.hospital_task(heart, "hungary", k_shot=10, seed=0)
    assert task.train_hospitals == ("cleveland", "switzerland", "long_beach")
    # Training features: mean 0 and (over observed values) scale 1; missing became 0.
    assert np.abs(task.train_x.mean(axis=0)).max() < 1e-5
    assert task.train_x.dtype == np.float32 and not np.isnan(task.train_x).any()
    # The new hospital's values do not move the standardisation: change them all, same task.
    changed = hd.HeartDisease({**heart.records, "hungary": heart.records["hungary"] * 1.5})
    again = hd.hospital_task(changed, "hungary", k_shot=10, seed=0)
    np.testing.assert_array_equal(again.train_x, task.train_x)
    standardise = hd.fit_standardiser(heart, task.train_hospitals)
    x, _ = heart.patients("hungary")
    np.testing.assert_array_equal(task.test_x, standardise(x[task.test_index]))


def test_standardiser_handles_all_missing_column(heart):
    standardise = hd.fit_standardiser(heart, ["switzerland"])
    chol = hd.ENCODED_FEATURES.index("chol")
    assert standardise.mean[chol] == 0 and standardise.std[chol] == 1
    x, _ = heart.patients("switzerland")
    assert (standardise(x)[:, chol] == 0).all()


# --- Hospital tasks ---------------------------------------------------------------------------

def test_leave_one_hospital_out():
    assert hd.leave_one_hospital_out("switzerland") == ("cleveland", "hungary", "long_beach")


@pytest.mark.parametrize("hospital", hd.HOSPITALS)
def test_hospital_task_sizes(heart, hospital):
    n = heart.counts()[hospital]
    for k_shot in hd.K_SHOTS:
        task = hd.hospital_task(heart, hospital, k_shot, seed=1)
        assert task.support_x.shape == (k_shot, 13) and len(task.support_y) == k_shot
        assert len(task.test_y) == n - 50
        assert not set(task.support_index.tolist()) & set(task.test_index.tolist())
        assert len(task.train_y) == 920 - n


def test_draws_are_stratified_nested_and_paired(heart):
    _, y = heart.patients("switzerland")
    tests, supports = [], []
    for k_shot in hd.K_SHOTS:
        support, test = hd.draw_local_patients(y, k_shot, n_test=73, seed=5)
        tests.append(test)
        supports.append(support)
    assert all(np.array_equal(t, tests[0]) for t in tests)  # same test set for every K
    for small, large in itertools.pairwise(supports):
        np.testing.assert_array_equal(large[:len(small)], small)  # nested labelled sets
    assert (y[tests[0]] == 0).sum() == round(73 * 8 / 123)  # the hospital's prevalence
    other = hd.draw_local_patients(y, 5, n_test=73, seed=6)
    assert not np.array_equal(other[1], tests[0])


@pytest.mark.parametrize("call", [
    lambda d: hd.hospital_task(d, "basel", 5),
    lambda d: d.patients("Cleveland"),
    lambda d: hd.fit_standardiser(d, ["cleveland", "va"]),
    lambda d: hd.leave_one_hospital_out("zurich"),
], ids=["task", "patients", "standardiser", "leave_one_out"])
def test_unknown_hospital(heart, call):
    with pytest.raises(ValueError, match="unknown hospital .*; expected one of \\('cleveland', "
                                         "'hungary', 'switzerland', 'long_beach'\\)"):
        call(heart)


def test_k_too_large(heart):
    with pytest.raises(ValueError, match="k_shot=51 is more than the 50 patients left for "
                                         "labelling: the hospital has 123 patients and 73 of "
                                         "them are the test set"):
        hd.hospital_task(heart, "switzerland", 51)
    with pytest.raises(ValueError, match="k_shot=24 is more than the 23 patients left"):
        hd.hospital_task(heart, "switzerland", 24, n_test=100)
    assert len(hd.hospital_task(heart, "switzerland", 23, n_test=100).support_y) == 23


@pytest.mark.parametrize("k_shot, n_test, message", [
    (-1, 10, "k_shot must be an int >= 0, got -1"),
    (2.0, 10, "k_shot must be an int >= 0, got 2.0"),
    (True, 10, "k_shot must be an int >= 0, got True"),
    (1, 0, "n_test=0, but the hospital has 123 patients"),
    (0, 124, "n_test=124, but the hospital has 123 patients"),
])
def test_bad_draw_arguments(heart, k_shot, n_test, message):
    with pytest.raises(ValueError, match=message):
        hd.hospital_task(heart, "switzerland", k_shot, n_test=n_test)


# --- Finding and downloading the files --------------------------------------------------------

def test_env_dir_is_used_and_missing_file_named(heart_disease_dir, no_env, monkeypatch,
                                                tmp_path):
    folder = tmp_path / "three"
    folder.mkdir()
    for name in NAMES[:3]:
        (folder / name).symlink_to(heart_disease_dir / name)
    monkeypatch.setenv(hd.ENV_HEART_DISEASE_DIR, str(folder))
    with pytest.raises(HeartDiseaseError, match=r"METALEARN_HEART_DISEASE_DIR points at .* "
                                                r"lacks processed\.va\.data\. It must hold"):
        hd.load_heart_disease(verbose=False)
    (folder / NAMES[3]).symlink_to(heart_disease_dir / NAMES[3])
    assert hd.find_heart_disease(download=False) == {n: folder / n for n in NAMES}
    assert list(no_env.iterdir()) == []  # nothing downloaded


def test_no_download_and_nothing_found(no_env):
    with pytest.raises(HeartDiseaseError, match="UCI Heart Disease not found. Set "
                                                "METALEARN_HEART_DISEASE_DIR"):
        hd.load_heart_disease(download=False, verbose=False)


def test_download(heart_disease_server, heart_disease_dir, tmp_path, network_guard):
    dest = tmp_path / "dest"
    assert hd.download_heart_disease(dest, base_url=heart_disease_server + "good/") == dest
    assert sorted(p.name for p in dest.iterdir()) == sorted(NAMES)
    for name in NAMES:
        assert (dest / name).read_bytes() == (heart_disease_dir / name).read_bytes()
    assert network_guard == []


def test_download_tampered_and_missing(heart_disease_server, tmp_path):
    with pytest.raises(HeartDiseaseError, match=f"Checksum mismatch for .*{SWISS}"):
        hd.download_heart_disease(tmp_path / "a", base_url=heart_disease_server + "tampered/")
    assert SWISS not in [p.name for p in (tmp_path / "a").iterdir()]
    with pytest.raises(HeartDiseaseError, match="Could not download .*empty/processed.cleveland"):
        hd.download_heart_disease(tmp_path / "b", base_url=heart_disease_server + "empty/")
    assert list((tmp_path / "b").iterdir()) == []


def test_load_downloads_into_cache_folder(heart_disease_server, no_env, monkeypatch):
    calls = []
    real_download = hd.download_heart_disease

    def local_download(dest, base_url=hd.OFFICIAL_BASE_URL):
        calls.append((dest, base_url))
        return real_download(dest, base_url=heart_disease_server + "good/")

    monkeypatch.setattr(hd, "download_heart_disease", local_download)
    assert sum(hd.load_heart_disease(verbose=False).counts().values()) == 920
    assert calls == [(no_env / "heart-disease", hd.OFFICIAL_BASE_URL)]


def test_default_download_goes_to_uci(no_env, network_guard):
    with pytest.raises(HeartDiseaseError, match="Could not download https://archive.ics.uci.edu/"
                                                "ml/machine-learning-databases/heart-disease/"
                                                "processed.cleveland.data"):
        hd.load_heart_disease(verbose=False)
    assert set(network_guard) == {"archive.ics.uci.edu"}


# --- The published anchor ---------------------------------------------------------------------

def test_detrano_anchor(heart):
    rows = hd.detrano_anchor(heart)
    assert list(rows) == ["hungary", "long_beach", "switzerland"]
    for hospital, row in rows.items():
        assert row.n_patients == heart.counts()[hospital]
        assert row.published_accuracy == hd.DETRANO_1989_ACCURACY[hospital]
        # Same protocol, other variables and cohorts: within 6 points of the paper.
        assert abs(row.accuracy.mean - row.published_accuracy) < 0.06
        assert 0 < row.accuracy.ci95 < 0.1 and row.auc > 0.7
    assert "published 77 %" in str(rows["hungary"])
