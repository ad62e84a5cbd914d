"""Shared fixtures of the unit tests: the real Omniglot (decoded once per session), the folders
of the real Fashion-MNIST and Heart Disease files, a network guard that keeps every test off the
internet, local HTTP servers for the download path, and a loader of the benchmark scripts.

Each data set's files are taken from its environment variable (``$METALEARN_OMNIGLOT_DIR``,
``$METALEARN_FASHION_MNIST_DIR``, ``$METALEARN_HEART_DISEASE_DIR``), else the course's cache
folder; tests that need them are skipped with a message when neither holds them.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import importlib.util
import os
import shutil
import socket
import threading
from pathlib import Path

import pytest

from metalearn_helpers import omniglot as omniglot_module
from metalearn_helpers.downloads import DataFiles, cache_dir
from metalearn_helpers.fashion_mnist import FASHION_MNIST_FILES
from metalearn_helpers.heart_disease import HEART_DISEASE_FILES
from metalearn_helpers.lake_trials import TRIALS_FILES

ZIP_NAMES = omniglot_module.OMNIGLOT_FILES.files
BENCHMARKS_DIR = Path(__file__).resolve().parents[1] / "benchmarks"
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def _find_data_folder(files: DataFiles) -> Path:
    """The folder holding all of a data set's files: its environment variable, else its cache
    sub-folder; skips the test with a message when neither holds them."""
    candidates = []
    if os.environ.get(files.env_var):
        candidates.append(Path(os.environ[files.env_var]))
    candidates.append(cache_dir() / files.subdir)
    for folder in candidates:
        if all((folder / name).is_file() for name in files.files):
            return folder
    pytest.skip(f"{files.name} files not found: set {files.env_var} to the folder holding "
                f"{files.files_text()}.")


@pytest.fixture(scope="session")
def zip_dir() -> Path:
    """The folder holding the two real Omniglot zips."""
    return _find_data_folder(omniglot_module.OMNIGLOT_FILES)


@pytest.fixture(scope="session")
def trials_dir() -> Path:
    """The folder holding Lake et al.'s all_runs.zip."""
    return _find_data_folder(TRIALS_FILES)


@pytest.fixture(scope="session")
def fashion_mnist_dir() -> Path:
    """The folder holding the four real Fashion-MNIST files."""
    return _find_data_folder(FASHION_MNIST_FILES)


@pytest.fixture(scope="session")
def heart_disease_dir() -> Path:
    """The folder holding the four real UCI Heart Disease files."""
    return _find_data_folder(HEART_DISEASE_FILES)


@pytest.fixture(scope="session")
def omniglot_cache(zip_dir, tmp_path_factory):
    """``(cache_folder, data)``: the real zips decoded once per session into a fresh folder."""
    cache = tmp_path_factory.mktemp("omniglot_cache")
    data = omniglot_module.load_omniglot(root=zip_dir, cache=cache, verbose=False)
    return cache, data


@pytest.fixture(scope="session")
def omniglot(omniglot_cache):
    """The decoded Omniglot at 28x28 (shared by all tests: never modify its arrays)."""
    return omniglot_cache[1]


@pytest.fixture(autouse=True)
def network_guard(monkeypatch):
    """Refuse every name lookup or connection that is not to the loopback interface, so no test
    can reach the internet (not even by DNS). Returns the list of refused attempts."""
    refused = []
    real_getaddrinfo, real_connect = socket.getaddrinfo, socket.socket.connect

    def getaddrinfo(host, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else host
        if name not in _LOOPBACK:
            refused.append(name)
            raise socket.gaierror(f"unit tests may not use the network (lookup of {name!r})")
        return real_getaddrinfo(host, *args, **kwargs)

    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in _LOOPBACK:
            refused.append(address[0])
            raise ConnectionRefusedError(f"unit tests may not use the network ({address!r})")
        return real_connect(self, address)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
    return refused


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _tamper(path: Path, offset: int | None = None) -> None:
    """Flip every bit of one byte of ``path`` (in the middle unless ``offset`` is given)."""
    data = bytearray(path.read_bytes())
    offset = len(data) // 2 if offset is None else offset
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.fixture(scope="session")
def tamper():
    """``tamper(path, offset=None)``: change one byte of a file in place."""
    return _tamper


def _load_benchmark(name: str):
    spec = importlib.util.spec_from_file_location(f"{name}_benchmark_script",
                                                  BENCHMARKS_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def load_benchmark():
    """``load_benchmark(name)``: the script ``benchmarks/<name>.py`` as a module (the scripts
    are not a package)."""
    return _load_benchmark


@contextlib.contextmanager
def _serve(root: Path):
    """Serve ``root`` over HTTP on 127.0.0.1 (free port); yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _serve_copies(folder: Path, names, tampered: str, tmp_path_factory):
    """Serve ``good/`` (copies of ``names`` from ``folder``), ``tampered/`` (the same with one
    byte of ``tampered`` changed) and ``empty/`` (nothing: every request is a 404)."""
    root = tmp_path_factory.mktemp("http_root")
    for sub in ("good", "tampered", "empty"):
        (root / sub).mkdir()
    for name in names:
        shutil.copyfile(folder / name, root / "good" / name)
        shutil.copyfile(folder / name, root / "tampered" / name)
    _tamper(root / "tampered" / tampered)
    return _serve(root)


@pytest.fixture(scope="module")
def http_server(zip_dir, tmp_path_factory):
    """A local HTTP server on 127.0.0.1 (free port). Returns its base URL; it serves
    ``good/`` (copies of both real zips), ``tampered/`` (background zip with one byte changed,
    good evaluation zip) and ``empty/`` (nothing: every request is a 404)."""
    with _serve_copies(zip_dir, ZIP_NAMES, "images_background.zip", tmp_path_factory) as url:
        yield url


@pytest.fixture(scope="module")
def trials_server(trials_dir, tmp_path_factory):
    """Like ``http_server`` for all_runs.zip (``tampered/``: one byte changed)."""
    with _serve_copies(trials_dir, TRIALS_FILES.files, "all_runs.zip", tmp_path_factory) as url:
        yield url


@pytest.fixture(scope="module")
def fashion_mnist_server(fashion_mnist_dir, tmp_path_factory):
    """Like ``http_server`` for the four Fashion-MNIST files (``tampered/``: the training
    labels file has one byte changed)."""
    with _serve_copies(fashion_mnist_dir, FASHION_MNIST_FILES.files,
                       "train-labels-idx1-ubyte.gz", tmp_path_factory) as url:
        yield url


@pytest.fixture(scope="module")
def heart_disease_server(heart_disease_dir, tmp_path_factory):
    """Like ``http_server`` for the four Heart Disease files (``tampered/``: the Swiss file has
    one byte changed)."""
    with _serve_copies(heart_disease_dir, HEART_DISEASE_FILES.files,
                       "processed.switzerland.data", tmp_path_factory) as url:
        yield url
