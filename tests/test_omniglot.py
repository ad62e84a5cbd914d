"""metalearn_helpers.omniglot: counts, splits, cache, checksums, missing data and download."""

from __future__ import annotations

import os
import shutil
import socket

import numpy as np
import pytest

from metalearn_helpers import omniglot as om
from metalearn_helpers.omniglot import OmniglotError

ZIP_NAMES = ("images_background.zip", "images_evaluation.zip")


@pytest.fixture
def no_env(monkeypatch, tmp_path):
    """No METALEARN_OMNIGLOT_DIR, and an empty METALEARN_DATA_DIR as the cache folder."""
    monkeypatch.delenv(om.ENV_OMNIGLOT_DIR, raising=False)
    cache = tmp_path / "data_dir"
    cache.mkdir()
    monkeypatch.setenv(om.ENV_DATA_DIR, str(cache))
    return cache


def link_zips(zip_dir, folder, names=ZIP_NAMES):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).symlink_to(zip_dir / name)
    return folder


# --- The decoded data -------------------------------------------------------------------------

def test_counts(omniglot):
    assert omniglot.counts() == {"background": (30, 964, 964 * 20),
                                 "evaluation": (20, 659, 659 * 20)}
    assert len(set(omniglot.alphabets)) == 50
    assert len(set(omniglot.names)) == 1623  # every (alphabet, character) once


def test_shapes_dtype_and_ink(omniglot):
    assert omniglot.images.shape == (1623, 20, 28, 28)
    assert omniglot.images.dtype == np.uint8
    assert omniglot.alphabets.shape == omniglot.characters.shape == omniglot.splits.shape == (1623,)
    # Inverted: paper is 0 (most pixels), ink 255.
    assert omniglot.images.min() == 0 and omniglot.images.max() == 255
    assert np.median(omniglot.images) == 0
    assert 5 < omniglot.images.mean() < 60
    # Each drawing is a distinct image.
    assert not np.array_equal(omniglot.images[0, 0], omniglot.images[0, 1])


def test_order_is_split_alphabet_character(omniglot):
    keys = list(zip([om.SPLITS.index(s) for s in omniglot.splits], omniglot.alphabets,
                    omniglot.characters))
    assert keys == sorted(keys)
    assert "images: 28x28 uint8" in omniglot.summary()


def test_vinyals_split(omniglot):
    split = om.split_characters(omniglot, "vinyals")
    assert {k: len(v) for k, v in split.items()} == {"train": 1028, "val": 172,
                                                     "trainval": 1200, "test": 423}
    train, val, trainval, test = (set(split[k].tolist())
                                  for k in ("train", "val", "trainval", "test"))
    assert not train & val and not trainval & test
    assert train | val == trainval
    assert trainval | test == set(range(1623))
    names = omniglot.names
    assert names[split["test"][0]] == "Gurmukhi/character42"
    assert names[split["test"][-1]] == "ULOG/character26"
    assert names[split["trainval"][-1]] == "Gurmukhi/character41"
    assert set(omniglot.alphabets[split["val"]]) == set(om.VINYALS_VALIDATION_ALPHABETS)
    assert set(omniglot.splits[split["val"]]) == {"background"}
    assert set(omniglot.splits[split["test"]]) == {"evaluation"}
    for indices in split.values():
        assert np.all(np.diff(indices) > 0)  # sorted


def test_lake_split(omniglot):
    split = om.split_characters(omniglot, "lake")
    assert set(split) == {"train", "test"}
    assert len(split["train"]) == 964 and len(split["test"]) == 659
    assert set(omniglot.splits[split["train"]]) == {"background"}
    assert set(omniglot.splits[split["test"]]) == {"evaluation"}
    assert len(set(omniglot.alphabets[split["train"]])) == 30
    assert len(set(omniglot.alphabets[split["test"]])) == 20


def test_unknown_protocol(omniglot):
    with pytest.raises(ValueError, match="protocol must be one of.*vinyals.*lake.*'snell'"):
        om.split_characters(omniglot, "snell")


@pytest.mark.parametrize("size", [0, -28, 28.0, "28"])
def test_bad_image_size(size, tmp_path):
    with pytest.raises(ValueError, match="image_size must be a positive int"):
        om.load_omniglot(image_size=size, cache=tmp_path, verbose=False)


# --- The decoded cache ------------------------------------------------------------------------

def test_cache_round_trip(omniglot_cache, tmp_path):
    cache, data = omniglot_cache
    assert [p.name for p in cache.iterdir()] == ["omniglot_28.npz"]  # no *.part left behind
    # The zips are not needed any more: a root without them would raise if it were used.
    empty = tmp_path / "no_zips"
    empty.mkdir()
    again = om.load_omniglot(root=empty, cache=cache, download=False, verbose=False)
    for field in ("images", "alphabets", "characters", "splits"):
        np.testing.assert_array_equal(getattr(again, field), getattr(data, field))
    assert again.images.dtype == np.uint8


def _truncated_copy(path, cache, data):
    path.write_bytes((cache / "omniglot_28.npz").read_bytes()[:100_000])


def _wrong_counts(path, cache, data):
    np.savez(path, images=data.images[:100], alphabets=data.alphabets[:100],
             characters=data.characters[:100], splits=data.splits[:100])


def _missing_field(path, cache, data):
    np.savez(path, images=data.images, alphabets=data.alphabets, splits=data.splits)


@pytest.mark.parametrize("damage", [
    lambda path, cache, data: path.write_bytes(b"this is not an npz file"),
    _truncated_copy, _wrong_counts, _missing_field,
], ids=["garbage", "truncated", "wrong_counts", "missing_field"])
def test_damaged_cache_is_rebuilt(damage, omniglot_cache, zip_dir, tmp_path, monkeypatch,
                                  capsys):
    cache, data = omniglot_cache
    target = tmp_path / "omniglot_28.npz"
    damage(target, cache, data)
    decoded = []  # the real decode is covered by the session fixture; count the calls here

    def fake_decode(zips, image_size):
        decoded.append((sorted(p.name for p in zips.values()), image_size))
        return data

    monkeypatch.setattr(om, "decode_zips", fake_decode)
    loaded = om.load_omniglot(root=zip_dir, cache=tmp_path, verbose=True)
    assert decoded == [(list(ZIP_NAMES), 28)]
    assert "Ignoring unreadable cache" in capsys.readouterr().out
    assert loaded is data
    with np.load(target) as npz:  # rewritten with good content
        np.testing.assert_array_equal(npz["images"], data.images)
        np.testing.assert_array_equal(npz["characters"], data.characters)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["omniglot_28.npz"]


def test_failed_cache_write_leaves_no_part_file(omniglot, tmp_path, monkeypatch):
    target = tmp_path / "omniglot_28.npz"
    target.write_bytes(b"previous content")

    def savez_then_fail(file, **arrays):
        file.write(b"half an npz")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", savez_then_fail)
    with pytest.raises(OSError, match="disk full"):
        om._save_atomically(target, omniglot)
    assert target.read_bytes() == b"previous content"  # never half-written
    assert [p.name for p in tmp_path.iterdir()] == ["omniglot_28.npz"]


def test_cache_file_is_readable_by_others(omniglot, tmp_path):
    target = tmp_path / "sub" / "omniglot_28.npz"
    om._save_atomically(target, omniglot)
    assert target.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in target.parent.iterdir()] == ["omniglot_28.npz"]


# --- Checksums --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ZIP_NAMES)
def test_verify_accepts_shared_zips(zip_dir, name):
    assert om.verify_zip(zip_dir / name) == "repacked copy"


def test_verify_refuses_one_changed_byte(zip_dir, tmp_path, tamper):
    copy = tmp_path / "images_evaluation.zip"
    shutil.copyfile(zip_dir / "images_evaluation.zip", copy)
    tamper(copy)
    with pytest.raises(OmniglotError, match="(?i)checksum mismatch") as error:
        om.verify_zip(copy)
    assert "8620260a0350fc57296716a3f1e394d2b4024b02f9ba3e1b8bb03e65e7594c6d" in str(error.value)


def test_verify_refuses_truncated_zip(zip_dir, tmp_path):
    copy = tmp_path / "images_background.zip"
    copy.write_bytes((zip_dir / "images_background.zip").read_bytes()[:1_000_000])
    with pytest.raises(OmniglotError, match="(?i)checksum.*truncated"):
        om.verify_zip(copy)


def test_verify_refuses_unknown_name(zip_dir, tmp_path):
    copy = tmp_path / "omniglot.zip"
    copy.symlink_to(zip_dir / "images_background.zip")
    with pytest.raises(OmniglotError, match="omniglot.zip is not an Omniglot zip.*"
                                            "images_background.zip.*images_evaluation.zip"):
        om.verify_zip(copy)


def test_find_zips_verifies(zip_dir, tmp_path, tamper):
    folder = link_zips(zip_dir, tmp_path / "zips", ["images_background.zip"])
    shutil.copyfile(zip_dir / "images_evaluation.zip", folder / "images_evaluation.zip")
    tamper(folder / "images_evaluation.zip")
    with pytest.raises(OmniglotError, match="Checksum mismatch"):
        om.find_zips(folder)


def test_decode_refuses_corrupt_zip(tmp_path):
    bad = tmp_path / "images_background.zip"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(OmniglotError, match="is corrupt"):
        om.decode_zips({bad.name: bad})


def test_decode_refuses_incomplete_data(zip_dir, tmp_path):
    # A valid zip holding only part of Omniglot decodes, then fails the count check.
    import zipfile

    part = tmp_path / "images_evaluation.zip"
    with zipfile.ZipFile(zip_dir / "images_evaluation.zip") as src, \
            zipfile.ZipFile(part, "w") as dst:
        for entry in [n for n in src.namelist() if n.endswith(".png")][:40]:
            dst.writestr(entry, src.read(entry))
    with pytest.raises(OmniglotError, match="expected 30 / 964. The data is incomplete"):
        om.decode_zips({part.name: part})


# --- Finding the zips -------------------------------------------------------------------------

def test_env_dir_is_used(zip_dir, no_env, monkeypatch, tmp_path):
    folder = link_zips(zip_dir, tmp_path / "elsewhere")
    monkeypatch.setenv(om.ENV_OMNIGLOT_DIR, str(folder))
    assert om.find_zips(download=False) == {n: folder / n for n in ZIP_NAMES}


def test_root_beats_env_dir(zip_dir, monkeypatch, tmp_path):
    monkeypatch.setenv(om.ENV_OMNIGLOT_DIR, str(tmp_path))  # empty
    assert om.find_zips(zip_dir, download=False) == {n: zip_dir / n for n in ZIP_NAMES}


def test_cache_folder_is_used(zip_dir, no_env):
    folder = link_zips(zip_dir, no_env / "omniglot")
    assert om.cache_dir() == no_env
    assert om.find_zips(download=False) == {n: folder / n for n in ZIP_NAMES}


def test_cache_dir_default_is_repo_data(monkeypatch):
    monkeypatch.delenv(om.ENV_DATA_DIR, raising=False)
    repo_data = os.path.join(os.path.dirname(os.path.dirname(om.__file__)), "data")
    if os.path.isdir(repo_data):
        assert str(om.cache_dir()) == os.path.realpath(repo_data)


def test_env_dir_empty_names_missing_files(monkeypatch, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv(om.ENV_OMNIGLOT_DIR, str(empty))
    monkeypatch.setenv(om.ENV_DATA_DIR, str(tmp_path / "data"))
    with pytest.raises(OmniglotError) as error:
        om.load_omniglot(verbose=False)
    message = str(error.value)
    assert om.ENV_OMNIGLOT_DIR in message and str(empty) in message
    assert "lacks images_background.zip, images_evaluation.zip" in message
    assert not (tmp_path / "data").exists()  # nothing cached, nothing downloaded


def test_env_dir_half_full_names_the_missing_one(zip_dir, monkeypatch, tmp_path):
    folder = link_zips(zip_dir, tmp_path / "half", ["images_background.zip"])
    monkeypatch.setenv(om.ENV_OMNIGLOT_DIR, str(folder))
    with pytest.raises(OmniglotError, match=r"lacks images_evaluation\.zip\. It must hold"):
        om.find_zips()


def test_root_missing_files(tmp_path):
    with pytest.raises(OmniglotError, match="argument root points at"):
        om.find_zips(tmp_path)


def test_no_download_and_nothing_found(no_env):
    with pytest.raises(OmniglotError, match="Omniglot not found. Set METALEARN_OMNIGLOT_DIR"):
        om.find_zips(download=False)
    with pytest.raises(OmniglotError, match="or allow the download"):
        om.load_omniglot(download=False, verbose=False)
    assert list(no_env.iterdir()) == []


# --- Download, from a local HTTP server only --------------------------------------------------

def test_download(http_server, zip_dir, tmp_path, network_guard):
    dest = tmp_path / "dest"
    assert om.download_omniglot(dest, base_url=http_server + "good/") == dest
    assert sorted(p.name for p in dest.iterdir()) == sorted(ZIP_NAMES)  # no temp folders left
    for name in ZIP_NAMES:
        assert om.verify_zip(dest / name) == "repacked copy"
        assert (dest / name).read_bytes() == (zip_dir / name).read_bytes()
    assert network_guard == []


def test_download_tampered_zip_is_refused(http_server, tmp_path):
    dest = tmp_path / "dest"
    with pytest.raises(OmniglotError, match="Checksum mismatch"):
        om.download_omniglot(dest, base_url=http_server + "tampered/")
    assert list(dest.iterdir()) == []  # neither the bad file nor its temporary folder


def test_download_missing_file(http_server, tmp_path):
    dest = tmp_path / "dest"
    with pytest.raises(OmniglotError, match="Could not download .*empty/images_background.zip"):
        om.download_omniglot(dest, base_url=http_server + "empty/")
    assert list(dest.iterdir()) == []


def test_download_unreachable(tmp_path):
    with socket.socket() as s:  # a port that nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dest = tmp_path / "dest"
    with pytest.raises(OmniglotError, match="Could not download .*set METALEARN_OMNIGLOT_DIR"):
        om.download_omniglot(dest, base_url=f"http://127.0.0.1:{port}/")
    assert list(dest.iterdir()) == []


def test_download_refuses_bad_existing_file(http_server, zip_dir, tmp_path, tamper):
    # A file already at the destination is kept only if it passes the checksum too.
    dest = tmp_path / "dest"
    dest.mkdir()
    shutil.copyfile(zip_dir / "images_background.zip", dest / "images_background.zip")
    tamper(dest / "images_background.zip")
    with pytest.raises(OmniglotError, match="Checksum mismatch"):
        om.download_omniglot(dest, base_url=http_server + "good/")


def test_find_zips_refuses_bad_half_cache(http_server, zip_dir, no_env, monkeypatch, tamper):
    # One tampered zip in the cache folder, the other missing: the download completes the pair,
    # but the tampered one must still be refused, not handed on to decoding.
    folder = no_env / "omniglot"
    folder.mkdir()
    shutil.copyfile(zip_dir / "images_background.zip", folder / "images_background.zip")
    tamper(folder / "images_background.zip")
    real_download = om.download_omniglot
    monkeypatch.setattr(om, "download_omniglot",
                        lambda dest: real_download(dest, base_url=http_server + "good/"))
    with pytest.raises(OmniglotError, match="Checksum mismatch"):
        om.find_zips()


def test_find_zips_downloads_into_cache_folder(http_server, no_env, monkeypatch):
    calls = []
    real_download = om.download_omniglot

    def local_download(dest, base_url=om.OFFICIAL_BASE_URL):
        calls.append((dest, base_url))
        return real_download(dest, base_url=http_server + "good/")

    monkeypatch.setattr(om, "download_omniglot", local_download)
    zips = om.find_zips()
    assert calls == [(no_env / "omniglot", om.OFFICIAL_BASE_URL)]
    assert zips == {n: no_env / "omniglot" / n for n in ZIP_NAMES}
    assert all(om.verify_zip(p) == "repacked copy" for p in zips.values())
    # Next time the cache folder is found without downloading.
    assert om.find_zips(download=False) == zips


def test_default_download_goes_to_official_url(no_env, network_guard):
    # The network guard refuses the lookup, so this proves the URL without touching the internet.
    with pytest.raises(OmniglotError, match="Could not download https://github.com/brendenlake/"
                                            "omniglot/raw/master/python/images_background.zip"):
        om.find_zips()
    assert network_guard and set(network_guard) == {"github.com"}
    assert not any((no_env / "omniglot").glob("*.zip"))
