"""Omniglot (Lake et al. 2015): find, verify, decode and cache the official release.

Defined in notebook ``02_task_sampling``.

Omniglot holds 1,623 handwritten characters from 50 alphabets, each drawn once by 20 people
(105x105 binary PNGs). The official release (https://github.com/brendenlake/omniglot, MIT licence)
ships two zips: ``images_background`` (30 alphabets, 964 characters) and ``images_evaluation``
(20 alphabets, 659 characters).

Where the zips are looked for, in order:

1. the ``root`` argument of :func:`load_omniglot` (a folder holding the two zips);
2. the environment variable ``METALEARN_OMNIGLOT_DIR``;
3. the course's cache folder (:func:`cache_dir`), sub-folder ``omniglot/``;
4. otherwise they are downloaded from the official URLs into that cache folder.

Every zip is checked against the official md5 or the sha256 of the course's repacked copy
(same PNG bytes, rebuilt archive); anything else is refused. The images are decoded once into
``omniglot_<size>.npz`` in the cache folder (written atomically), so later loads take a second.
Finding, checking and downloading are shared with the other data sets
(:mod:`metalearn_helpers.downloads`).

Reference: Lake, Salakhutdinov & Tenenbaum (2015), "Human-level concept learning through
probabilistic program induction", Science 350(6266).
"""

from __future__ import annotations

import dataclasses
import io
import os
import re
import zipfile
from pathlib import Path

import numpy as np

from .downloads import (  # noqa: F401  (ENV_DATA_DIR and cache_dir: re-exported, this module's API)
    ENV_DATA_DIR,
    DataError,
    DataFiles,
    cache_dir,
    download_files,
    find_files,
    verify_file,
    write_atomically,
)

SPLITS = ("background", "evaluation")
DRAWINGS_PER_CHARACTER = 20
EXPECTED_COUNTS = {  # split: (alphabets, characters)
    "background": (30, 964),
    "evaluation": (20, 659),
}
OFFICIAL_BASE_URL = "https://github.com/brendenlake/omniglot/raw/master/python/"

# Accepted checksums of each zip: the official release (md5, as listed by torchvision) and the
# course's repacked offline copy (sha256, see data/README.md).
ACCEPTED_CHECKSUMS = {
    "images_background.zip": {
        "md5": {"68d2efa1b9178cc56df9314c21c6e718": "official release"},
        "sha256": {
            "236b154d0e6334f364479a5329afea6dab9ff215c148a78d72363ce8c76d5426": "repacked copy",
        },
    },
    "images_evaluation.zip": {
        "md5": {"6b91aef0f799c5bb55b94e3f2daec811": "official release"},
        "sha256": {
            "8620260a0350fc57296716a3f1e394d2b4024b02f9ba3e1b8bb03e65e7594c6d": "repacked copy",
        },
    },
}

ENV_OMNIGLOT_DIR = "METALEARN_OMNIGLOT_DIR"

_PNG_PATH = re.compile(
    r"^images_(background|evaluation)/([^/]+)/(character\d+)/(\d{4})_(\d{2})\.png$"
)


class OmniglotError(DataError):
    """Omniglot could not be found, verified or decoded; the message says what to do."""


OMNIGLOT_FILES = DataFiles(
    name="Omniglot", kind="an Omniglot zip", checksums=ACCEPTED_CHECKSUMS,
    env_var=ENV_OMNIGLOT_DIR, subdir="omniglot", base_url=OFFICIAL_BASE_URL,
    origin="the official release, https://github.com/brendenlake/omniglot", error=OmniglotError,
)


@dataclasses.dataclass(frozen=True)
class Omniglot:
    """Decoded Omniglot, one row per character.

    Attributes:
        images: uint8 array ``(n_characters, 20, size, size)``; ink is 255, paper 0
            (inverted from the PNGs, as in the MAML code, so strokes are the signal).
        alphabets: alphabet name of each character, e.g. ``"Latin"``.
        characters: character folder name, e.g. ``"character07"``.
        splits: ``"background"`` or ``"evaluation"`` for each character.
    """

    images: np.ndarray
    alphabets: np.ndarray
    characters: np.ndarray
    splits: np.ndarray

    @property
    def names(self) -> list[str]:
        """``"Alphabet/characterNN"`` for each character."""
        return [f"{a}/{c}" for a, c in zip(self.alphabets, self.characters)]

    def counts(self) -> dict[str, tuple[int, int, int]]:
        """``{split: (alphabets, characters, images)}``."""
        out = {}
        for split in SPLITS:
            mask = self.splits == split
            out[split] = (
                len(set(self.alphabets[mask])),
                int(mask.sum()),
                int(mask.sum()) * self.images.shape[1],
            )
        return out

    def summary(self) -> str:
        lines = []
        for split, (n_alpha, n_char, n_img) in self.counts().items():
            lines.append(
                f"{split:>10}: {n_alpha} alphabets, {n_char} characters, {n_img:,} images"
            )
        size = self.images.shape[-1]
        lines.append(f"images: {size}x{size} uint8, ink = 255")
        return "\n".join(lines)


def verify_zip(path: str | os.PathLike) -> str:
    """Check a zip against the accepted checksums; return which copy it is.

    Raises:
        OmniglotError: unknown file name or a checksum that matches neither the official
            release nor the course's repacked copy.
    """
    return verify_file(OMNIGLOT_FILES, path)


def download_omniglot(dest: str | os.PathLike, base_url: str = OFFICIAL_BASE_URL) -> Path:
    """Download both zips from ``base_url`` into ``dest`` with ``keras.utils.get_file`` and
    verify their checksums; a file that fails the check is deleted. Returns ``dest``."""
    return download_files(OMNIGLOT_FILES, dest, base_url)


def find_zips(root: str | os.PathLike | None = None, download: bool = True) -> dict[str, Path]:
    """Locate (or download) and verify both zips; see the module docstring for the order."""
    return find_files(OMNIGLOT_FILES, root, download=download, fetch=download_omniglot)


def decode_png(png: bytes, image_size: int = 28) -> np.ndarray:
    """One Omniglot PNG as a uint8 ``(image_size, image_size)`` array, resized with Lanczos (as
    in the MAML code) and inverted (ink 255, paper 0). Also used for Lake's one-shot trials
    (:mod:`metalearn_helpers.lake_trials`)."""
    from PIL import Image

    with Image.open(io.BytesIO(png)) as im:
        im = im.convert("L").resize((image_size, image_size), Image.LANCZOS)
        return 255 - np.asarray(im, dtype=np.uint8)


def decode_zips(zips: dict[str, Path], image_size: int = 28) -> Omniglot:
    """Decode every PNG, resize to ``image_size`` (Lanczos, as in the MAML code) and invert."""
    records = []  # (split, alphabet, character, drawer, pixels)
    for name, path in zips.items():
        try:
            with zipfile.ZipFile(path) as archive:
                for entry in archive.namelist():
                    match = _PNG_PATH.match(entry)
                    if not match:
                        continue
                    split, alphabet, character, _, drawer = match.groups()
                    pixels = decode_png(archive.read(entry), image_size)
                    records.append((split, alphabet, character, int(drawer), pixels))
        except (zipfile.BadZipFile, OSError, EOFError) as error:
            raise OmniglotError(f"{path} is corrupt ({error}); delete it and fetch it "
                                "again.") from error
    records.sort(key=lambda r: (SPLITS.index(r[0]), r[1], r[2], r[3]))
    keys = sorted({r[:3] for r in records}, key=lambda k: (SPLITS.index(k[0]), k[1], k[2]))
    images = np.stack([r[4] for r in records]).reshape(len(keys), -1, image_size, image_size)
    data = Omniglot(
        images=images,
        alphabets=np.array([k[1] for k in keys]),
        characters=np.array([k[2] for k in keys]),
        splits=np.array([k[0] for k in keys]),
    )
    check_counts(data)
    return data


def check_counts(data: Omniglot) -> None:
    """Raise if the alphabets, characters or drawings differ from the official release."""
    if data.images.shape[1] != DRAWINGS_PER_CHARACTER:
        raise OmniglotError(f"expected {DRAWINGS_PER_CHARACTER} drawings per character, found "
                            f"{data.images.shape[1]}: the data is incomplete.")
    for split, (n_alpha, n_char, _) in data.counts().items():
        if (n_alpha, n_char) != EXPECTED_COUNTS[split]:
            want_alpha, want_char = EXPECTED_COUNTS[split]
            raise OmniglotError(
                f"{split}: found {n_alpha} alphabets / {n_char} characters, expected "
                f"{want_alpha} / {want_char}. The data is incomplete or not Omniglot."
            )


def _save_atomically(path: Path, data: Omniglot) -> None:
    write_atomically(path, lambda f: np.savez(f, **dataclasses.asdict(data)), suffix=".npz.part")


# Vinyals et al. (2016, arXiv 1606.04080) split used by Prototypical Networks (1703.05175) and
# learn2learn/torchmeta: characters in (background, evaluation) x alphabet x character order,
# the first 1,200 for training (of which these five background alphabets, 172 characters, are
# the validation carve-out) and the last 423 for testing.
VINYALS_VALIDATION_ALPHABETS = (
    "Armenian", "Bengali", "Early_Aramaic", "Hebrew", "Mkhedruli_(Georgian)",
)
VINYALS_N_TRAINVAL = 1200
PROTOCOLS = ("vinyals", "lake")


def split_characters(data: Omniglot, protocol: str = "vinyals") -> dict[str, np.ndarray]:
    """Character indices of each split of an evaluation protocol.

    Args:
        data: loaded Omniglot.
        protocol: ``"vinyals"``: 1,200 training characters (``"train"`` 1,028 + ``"val"`` 172,
            together ``"trainval"``) and 423 ``"test"`` characters, the split of Vinyals et al.
            2016 used by MAML-style and ProtoNet papers (always with 90-degree rotations as extra
            classes). ``"lake"``: Lake et al.'s alphabet split, ``"train"`` = the 30 background
            alphabets, ``"test"`` = the 20 evaluation alphabets (usually 20-way within one
            alphabet, no rotations).

    Returns:
        ``{split_name: sorted int array of character indices}``.
    """
    order = np.arange(len(data.alphabets))  # load_omniglot already sorts in the Vinyals order
    if protocol == "vinyals":
        trainval, test = order[:VINYALS_N_TRAINVAL], order[VINYALS_N_TRAINVAL:]
        is_val = np.isin(data.alphabets[trainval], VINYALS_VALIDATION_ALPHABETS) & (
            data.splits[trainval] == "background")
        return {"train": trainval[~is_val], "val": trainval[is_val], "trainval": trainval,
                "test": test}
    if protocol == "lake":
        return {"train": order[data.splits == "background"],
                "test": order[data.splits == "evaluation"]}
    raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}.")


def load_omniglot(
    root: str | os.PathLike | None = None,
    image_size: int = 28,
    cache: str | os.PathLike | None = None,
    download: bool = True,
    verbose: bool = True,
) -> Omniglot:
    """Load Omniglot at ``image_size`` x ``image_size``, decoding and caching it on first use.

    Args:
        root: folder holding the two official zips (default: ``$METALEARN_OMNIGLOT_DIR``, then
            the cache folder, then a download).
        image_size: side of the square images (28 in the MAML and ProtoNets papers).
        cache: folder for the decoded ``.npz`` (default: :func:`cache_dir`).
        download: allow downloading from the official URLs if the zips are nowhere.
        verbose: print the counts.

    Returns:
        An :class:`Omniglot` with 964 + 659 characters x 20 drawings.
    """
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
        raise ValueError(f"image_size must be a positive int, got {image_size!r}.")
    cache_file = Path(cache or cache_dir()) / f"omniglot_{image_size}.npz"
    data = None
    if cache_file.is_file():
        try:
            with np.load(cache_file) as npz:
                data = Omniglot(**{f.name: npz[f.name] for f in dataclasses.fields(Omniglot)})
            check_counts(data)
        except Exception as error:  # a damaged cache is rebuilt, never trusted
            if verbose:
                print(f"Ignoring unreadable cache {cache_file} ({error}); decoding again.")
            data = None
    if data is None:
        data = decode_zips(find_zips(root, download=download), image_size)
        _save_atomically(cache_file, data)
    if verbose:
        print(data.summary())
    return data
