"""Find, verify, download and cache the course's data files: one place for every data set.

Defined in notebook ``02_task_sampling`` (Omniglot); reused by ``07_applications``
(Fashion-MNIST, UCI Heart Disease).

A data set is described by a :class:`DataFiles` record: its file names with the checksums
accepted for each, the environment variable naming an offline folder, its sub-folder of the
course's cache folder and its official URL. :func:`find_files` looks for the files, in order, in

1. the ``root`` argument of the data set's loader (a folder holding all its files);
2. the data set's environment variable (e.g. ``METALEARN_OMNIGLOT_DIR``);
3. the data set's sub-folder of the cache folder (:func:`cache_dir`);
4. otherwise it downloads them from the official URL into that sub-folder: each file goes to a
   temporary folder beside its destination, is verified, then moved into place by an atomic
   rename, so a half-downloaded or wrong file never sits where a later run would find it.

A file is used only if one of its checksums is listed: the official release's, or that of the
course's offline copy (listed in ``data/README.md``). Checksums are of the file's bytes
(``"md5"``, ``"sha256"``) or, for a gzip file that a repackager recompressed, of its decompressed
bytes (``"sha256_gunzip"``). Anything else is refused with the checksums found and accepted.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import os
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

ENV_DATA_DIR = "METALEARN_DATA_DIR"
DIGEST_NAMES = {"md5": "md5", "sha256": "sha256",
                "sha256_gunzip": "sha256 of the decompressed content"}


class DataError(RuntimeError):
    """A data set could not be found, verified or read; the message says what to do."""


@dataclasses.dataclass(frozen=True)
class DataFiles:
    """What the course needs to know to find and check one data set's files.

    Attributes:
        name: the data set, e.g. ``"Omniglot"``.
        kind: how to name one of its files in a sentence, e.g. ``"an Omniglot zip"``.
        checksums: ``{file name: {digest: {hexdigest: label}}}``, digest one of
            ``"md5"``, ``"sha256"``, ``"sha256_gunzip"``; label says which copy it is.
        env_var: environment variable naming a folder that holds all the files.
        subdir: sub-folder of the cache folder.
        base_url: official URL the file names are appended to.
        origin: where the files come from, for error messages.
        error: exception class raised for this data set (a :class:`DataError`).
    """

    name: str
    kind: str
    checksums: dict
    env_var: str
    subdir: str
    base_url: str
    origin: str
    error: type = DataError

    @property
    def files(self) -> tuple[str, ...]:
        return tuple(self.checksums)

    def files_text(self) -> str:
        """``"a and b"``, ``"a, b, c and d"``."""
        *head, last = self.files
        return f"{', '.join(head)} and {last}" if head else last


def cache_dir() -> Path:
    """The course's cache folder: ``$METALEARN_DATA_DIR``, else the repository's ``data/``
    (when the helpers run from a checkout), else ``~/.cache/metalearn``."""
    if os.environ.get(ENV_DATA_DIR):
        return Path(os.environ[ENV_DATA_DIR]).expanduser()
    repo_data = Path(__file__).resolve().parents[1] / "data"
    if repo_data.is_dir():
        return repo_data
    return Path.home() / ".cache" / "metalearn"


def _gunzip_sha256(path: Path) -> str | None:
    """sha256 of the decompressed content, or None if the file is not a valid gzip file."""
    digest = hashlib.sha256()
    try:
        with gzip.open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    except (OSError, EOFError, zlib.error):
        return None
    return digest.hexdigest()


def verify_file(files: DataFiles, path: str | os.PathLike) -> str:
    """Check ``path`` against the checksums accepted for its name; return which copy it is.

    Raises:
        files.error: a name that is not one of the data set's files, or a file whose checksums
            match none of the accepted ones (the message names the file, the checksums found
            and the accepted ones).
    """
    path = Path(path)
    accepted = files.checksums.get(path.name)
    if accepted is None:
        raise files.error(f"{path.name} is not {files.kind}; expected one of "
                          f"{sorted(files.files)}.")
    found = {"md5": hashlib.md5(), "sha256": hashlib.sha256()}
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            for digest in found.values():
                digest.update(block)
    found = {name: digest.hexdigest() for name, digest in found.items()}
    if "sha256_gunzip" in accepted:
        found["sha256_gunzip"] = _gunzip_sha256(path) or "none (not a gzip file)"
    for name, value in found.items():
        label = accepted.get(name, {}).get(value)
        if label:
            return label
    found_text = ", ".join(f"{DIGEST_NAMES[name]} {value}" for name, value in found.items())
    accepted_text = " or ".join(f"{label} {DIGEST_NAMES[name]} {value}"
                                for name, table in accepted.items()
                                for value, label in table.items())
    raise files.error(
        f"Checksum mismatch for {path}: {found_text}. Accepted: {accepted_text}. The file is "
        f"corrupt, truncated or not {files.name}: delete it and fetch it again."
    )


def download_files(files: DataFiles, dest: str | os.PathLike, base_url: str | None = None) -> Path:
    """Download every file of ``files`` from ``base_url`` (default: the official URL) into
    ``dest`` with ``keras.utils.get_file``, verifying each before moving it into place. Files
    already in ``dest`` are kept only if they pass the checksum too. Returns ``dest``."""
    import keras

    base_url = files.base_url if base_url is None else base_url
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for name in files.files:
        target = dest / name
        if target.exists():
            verify_file(files, target)
            continue
        with tempfile.TemporaryDirectory(dir=dest) as tmp:
            try:
                fetched = keras.utils.get_file(
                    fname=name, origin=base_url + name, cache_dir=tmp, cache_subdir="."
                )
            except Exception as error:  # network errors come in many types
                raise files.error(
                    f"Could not download {base_url + name}: {error}. Without internet, put "
                    f"{files.files_text()} in a folder and set {files.env_var} to it."
                ) from error
            verify_file(files, fetched)
            os.replace(fetched, target)
    return dest


def find_files(files: DataFiles, root: str | os.PathLike | None = None,
               cache: str | os.PathLike | None = None, download: bool = True,
               fetch: Callable[[Path], Path] | None = None) -> dict[str, Path]:
    """Locate (or download) and verify every file of ``files``; see the module docstring for
    the order. ``cache`` replaces :func:`cache_dir`; ``fetch(dest)`` replaces
    :func:`download_files` (the data set's own download function). Returns
    ``{file name: path}``."""
    candidates = []
    if root is not None:
        candidates.append(("argument root", Path(root)))
    elif os.environ.get(files.env_var):
        candidates.append((files.env_var, Path(os.environ[files.env_var])))
    cache_folder = Path(cache if cache is not None else cache_dir()) / files.subdir
    candidates.append(("cache folder", cache_folder))
    for where, folder in candidates:
        paths = {name: folder / name for name in files.files}
        if all(p.is_file() for p in paths.values()):
            for p in paths.values():
                verify_file(files, p)
            return paths
        if where != "cache folder":
            missing = [n for n, p in paths.items() if not p.is_file()]
            raise files.error(
                f"{where} points at {folder}, which lacks {', '.join(missing)}. "
                f"It must hold {files.files_text()} ({files.origin})."
            )
    if not download:
        raise files.error(f"{files.name} not found. Set {files.env_var} to a folder holding "
                          f"{files.files_text()}, or allow the download.")
    folder = fetch(cache_folder) if fetch is not None else download_files(files, cache_folder)
    return {name: Path(folder) / name for name in files.files}


def write_atomically(path: str | os.PathLike, write: Callable[[BinaryIO], None],
                     suffix: str = ".part") -> None:
    """Write ``path`` through ``write(file)`` into a temporary file beside it, then rename it
    into place (readable by all): a failed write leaves the old file, and no temporary one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
