"""Shared fixtures of the unit tests: the real Omniglot (decoded once per session), a network
guard that keeps every test off the internet, and a local HTTP server for the download path.

The Omniglot zips are taken from ``$METALEARN_OMNIGLOT_DIR`` (else the course's cache folder);
tests that need them are skipped with a message when neither holds them.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import socket
import threading
from pathlib import Path

import pytest

from metalearn_helpers import omniglot as omniglot_module

ZIP_NAMES = ("images_background.zip", "images_evaluation.zip")
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def _find_zip_folder() -> Path | None:
    candidates = []
    if os.environ.get(omniglot_module.ENV_OMNIGLOT_DIR):
        candidates.append(Path(os.environ[omniglot_module.ENV_OMNIGLOT_DIR]))
    candidates.append(omniglot_module.cache_dir() / "omniglot")
    for folder in candidates:
        if all((folder / name).is_file() for name in ZIP_NAMES):
            return folder
    return None


@pytest.fixture(scope="session")
def zip_dir() -> Path:
    """The folder holding the two real Omniglot zips."""
    folder = _find_zip_folder()
    if folder is None:
        pytest.skip(f"Omniglot zips not found: set {omniglot_module.ENV_OMNIGLOT_DIR} to the "
                    "folder holding images_background.zip and images_evaluation.zip.")
    return folder


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


@pytest.fixture(scope="module")
def http_server(zip_dir, tmp_path_factory):
    """A local HTTP server on 127.0.0.1 (free port). Returns its base URL; it serves
    ``good/`` (copies of both real zips), ``tampered/`` (background zip with one byte changed,
    good evaluation zip) and ``empty/`` (nothing: every request is a 404)."""
    root = tmp_path_factory.mktemp("http_root")
    for sub in ("good", "tampered", "empty"):
        (root / sub).mkdir()
    for name in ZIP_NAMES:
        shutil.copyfile(zip_dir / name, root / "good" / name)
        shutil.copyfile(zip_dir / name, root / "tampered" / name)
    _tamper(root / "tampered" / "images_background.zip")
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
