"""The notebooks as a student sees them: JupyterLab in headless Chromium (marker ``browser``).

For each notebook this opens a copy in a fresh JupyterLab (no token, a free port on 127.0.0.1,
fresh settings: like a fresh clone, so the notebook is untrusted) and checks that the committed
outputs read well without running anything (figures, no ``VBox(`` or ``0%|`` text), that
opening does not mark the notebook modified and that saving it at once writes the same bytes. For each notebook of :data:`EXPLORERS` it then runs
all cells in the ``ci`` preset, changes each listed control of the notebook's explorer widget,
and checks that the explorer's figure changes, that no JavaScript error is logged and that no
"Error displaying widget" appears. Screenshots go to ``runs/browser/`` for a person to look at.

Needs PyPI ``playwright==1.64.1`` (the ``dev`` extra) and Debian's ``chromium`` (150 on Debian 12,
156 on newer releases; never ``playwright install``, which downloads browsers). Run:
``pytest -m browser tests/test_browser.py``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "runs" / "browser"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
RUN_ALL_TIMEOUT = 300  # seconds for one notebook's Run All in the ci preset
REDRAW_TIMEOUT = 60  # seconds for one control change to redraw the explorer's figure

# The one place that says which notebooks have an explorer and which of its controls to change:
# (kind, description label, new value); kind is slider, dropdown, checkbox or text. Add new
# notebooks here.
EXPLORERS = {
    "01_concepts.ipynb": [("slider", "seed", 7), ("slider", "K", 3)],
    "02_task_sampling.ipynb": [("slider", "n_way", 10), ("dropdown", "split", "lake evaluation"),
                               ("checkbox", "within_alphabet", True), ("text", "seed", 3),
                               ("slider", "k_shot", 20)],
    "03_maml_sinusoid.ipynb": [("slider", "K", 10), ("slider", "steps", 3),
                               ("slider", "lr pretrained", 0.2),
                               ("checkbox", "points from x in [0, 5] only", True),
                               ("text", "x positions", "-4, -1.5, 2")],
    "05_metric_based.ipynb": [("slider", "ways", 10), ("slider", "shots", 3),
                              ("checkbox", "within one alphabet", True), ("text", "seed", 4)],
    "06_model_based.ipynb": [("dropdown", "learner", 1), ("slider", "episode", 5),
                             ("slider", "step t", 10)],
    "07_applications_few_shot.ipynb": [("dropdown", "new hospital", 1), ("slider", "draw", 5)],
    "08_applications_personalisation.ipynb": [("dropdown", "new user", 1)],
    "09_meta_rl.ipynb": [("dropdown", "policy", 0), ("slider", "p arm 1", 0.9),
                         ("slider", "luck seed", 3)],
}
# Notebooks without an explorer: only the first opening is checked (nbval runs them).
OTHER_NOTEBOOKS = ["04_maml_omniglot.ipynb", "10_efficiency_and_scale.ipynb",
                   "11_tools_trends_faq.ipynb"]

SETTINGS = {  # fresh JupyterLab settings: never write the notebook, render every cell, no news
    "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false",
                                                    "checkForUpdates": False},
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _children(pid: int) -> list[int]:
    """Process ids whose parent is ``pid`` (the server's kernels), from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return found


def _alive(pid: int) -> bool:
    """The process runs (exists and is not a zombie waiting for its parent)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _stop(pids: list[int]) -> None:
    """SIGTERM, then SIGKILL after 10 s, to each process id of ``pids``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in filter(_alive, pids):
            with contextlib.suppress(ProcessLookupError):  # it has just exited
                os.kill(pid, sig)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(map(_alive, pids)):
            time.sleep(0.2)


@pytest.fixture(scope="module")
def jupyterlab(tmp_path_factory):
    """``(base_url, notebook_folder)``: JupyterLab serving copies of the notebooks."""
    home = tmp_path_factory.mktemp("jupyterlab")
    shutil.copytree(ROOT / "notebooks", home / "notebooks",
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    for plugin, values in SETTINGS.items():
        path = home / "settings" / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    env = dict(os.environ, METALEARN_PRESET="ci", JUPYTER_CONFIG_DIR=str(home / "config"),
               JUPYTER_DATA_DIR=str(home / "data"), JUPYTER_RUNTIME_DIR=str(home / "runtime"),
               JUPYTERLAB_SETTINGS_DIR=str(home / "settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"),
               PYTHONPATH=os.pathsep.join([str(ROOT)] + [p for p in
                                          os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    env.pop("MPLBACKEND", None)  # kernels draw inline, as for a student
    port = _free_port()
    log = open(home / "server.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip=127.0.0.1",
         f"--port={port}", "--ServerApp.port_retries=0", "--ServerApp.token=",
         "--ServerApp.password=", f"--ServerApp.root_dir={home}", "--LabApp.news_url=None",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=home)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status", timeout=2).read()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"JupyterLab did not start: see {home / 'server.log'}")
                time.sleep(0.5)
        yield base, home / "notebooks"
    finally:
        kernels = _children(server.pid)
        _stop([server.pid])
        server.wait()
        _stop(kernels)
        log.close()


@pytest.fixture(scope="module")
def browser():
    """Headless Debian Chromium driven by playwright; skipped with instructions if missing."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is missing: pip install 'playwright==1.64.1' (in the dev extra); "
                    "do not run 'playwright install', the tests use the system Chromium.")
    if CHROMIUM is None:
        pytest.skip("Chromium not found: install it with 'sudo apt-get install -y chromium' "
                    "(Debian/Ubuntu); .ci/run installs it.")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def _open(browser, base, notebook):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    workspace = re.sub(r"\W", "-", notebook)  # a fresh workspace: only this notebook opens
    page.goto(f"{base}/lab/workspaces/{workspace}/tree/notebooks/{notebook}")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    page.wait_for_function(  # the kernel has connected (JupyterLab may then update metadata)
        "() => /\\| Idle/.test(document.querySelector('.jp-StatusBar-Widget')?.parentElement"
        "?.innerText ?? '')", timeout=90_000)
    page.wait_for_timeout(1000)
    return page, errors


def _menu(page, menu, item):
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(f"^{menu}$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(f"^{re.escape(item)}$")).click()


PROGRESS = """() => {
  const prompts = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')]
    .map(e => e.textContent.trim());
  const failed = document.querySelector('.jp-Notebook').innerText
    .includes('Traceback (most recent call last)');
  const running = prompts.some(t => t.includes('*'));
  return (failed && !running) || prompts.every(t => /\\[\\d+\\]/.test(t));
}"""


def _run_all(page, notebook):
    _menu(page, "Edit", "Clear Outputs of All Cells")
    _menu(page, "Run", "Run All Cells")
    page.wait_for_function(PROGRESS, timeout=RUN_ALL_TIMEOUT * 1000, polling=1000)
    text = page.locator(".jp-Notebook").inner_text()
    assert "Traceback (most recent call last)" not in text, f"{notebook}: a cell failed"


def _control(explorer, kind, label):
    exact = re.compile(f"^{re.escape(label)}$")
    if kind == "checkbox":
        return explorer.get_by_role("checkbox", name=label, exact=True)
    container = {"slider": ".widget-slider", "dropdown": ".widget-dropdown",
                 "text": ".widget-text"}[kind]
    return explorer.locator(container).filter(
        has=explorer.page.locator(".widget-label", has_text=exact))


def _change(page, explorer, kind, label, value):
    control = _control(explorer, kind, label)
    if kind == "checkbox":
        control.set_checked(bool(value))
    elif kind == "dropdown":
        select = control.locator("select")
        if isinstance(value, int):
            value = select.locator("option").nth(value).inner_text()
        select.select_option(label=value)
    elif kind == "slider":
        control.locator(".widget-readout").click()
        page.keyboard.press("Control+A")
        page.keyboard.type(str(value))
        page.keyboard.press("Enter")
    else:
        control.locator("input").fill(str(value))
        control.locator("input").press("Enter")


def _finished_file(path, deadline) -> bytes:
    """The file's bytes once the server has finished writing them (it truncates, then writes):
    the same complete JSON on two reads 0.2 s apart, or whatever is there at ``deadline``."""
    previous = None
    while time.monotonic() < deadline:
        data = path.read_bytes()
        try:
            json.loads(data)
        except ValueError:
            data = None
        if data is not None and data == previous:
            return data
        previous = data
        time.sleep(0.2)
    return path.read_bytes()


def _check_saved_unchanged(page, folder, notebook):
    """Saving right after opening writes the committed bytes back (JupyterLab's saved form)."""
    path = folder / notebook
    before = path.stat().st_mtime_ns
    _menu(page, "File", "Save Notebook")
    deadline = time.monotonic() + 15
    while path.stat().st_mtime_ns == before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert path.stat().st_mtime_ns != before, f"{notebook}: JupyterLab did not save"
    saved = _finished_file(path, deadline)
    assert saved == (ROOT / "notebooks" / notebook).read_bytes(), (
        f"{notebook}: JupyterLab saves it differently; store it with scripts/store_notebooks.py")


def _check_first_opening(page, notebook):
    tab = page.locator("#jp-main-dock-panel .lm-TabBar-tab.lm-mod-current")
    text = page.locator(".jp-Notebook").inner_text()
    for widget_text in ("VBox(children=", "HBox(children=", "0%|"):
        assert widget_text not in text, f"{notebook} shows {widget_text!r} before running"
    assert page.locator(".jp-Notebook .jp-OutputArea-output img").count() > 0, notebook
    assert "jp-mod-dirty" not in (tab.get_attribute("class") or ""), (
        f"{notebook} is marked modified as soon as it opens")


@pytest.mark.parametrize("notebook", list(EXPLORERS) + OTHER_NOTEBOOKS)
def test_notebook_in_jupyterlab(jupyterlab, browser, notebook):
    base, folder = jupyterlab
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    stem = notebook.removesuffix(".ipynb")
    page, errors = _open(browser, base, notebook)
    try:
        page.screenshot(path=SCREENSHOTS / f"{stem}-0-opened.png")
        _check_first_opening(page, notebook)
        _check_saved_unchanged(page, folder, notebook)
        if notebook in EXPLORERS:
            _run_all(page, notebook)
        explorer = page.locator(".jp-Notebook .widget-vbox:has(> .widget-output)")
        for step, (kind, label, value) in enumerate(EXPLORERS.get(notebook, []), start=1):
            figure = explorer.first.locator(".widget-output")
            if step == 1:
                assert explorer.count() == 1, f"{notebook}: expected one explorer widget"
                explorer.first.scroll_into_view_if_needed()
                explorer.first.screenshot(path=SCREENSHOTS / f"{stem}-1-ran.png")
            before = figure.inner_html()
            _change(page, explorer.first, kind, label, value)
            page.wait_for_function(
                "([el, before]) => el.innerHTML !== before && el.innerHTML.length > 0",
                arg=[figure.element_handle(), before], timeout=REDRAW_TIMEOUT * 1000)
            name = re.sub(r"\W+", "_", label)
            explorer.first.screenshot(path=SCREENSHOTS / f"{stem}-{step + 1}-{name}.png")
        page.screenshot(path=SCREENSHOTS / f"{stem}-9-end.png", full_page=True)
        assert "Error displaying widget" not in page.locator(".jp-Notebook").inner_text()
        assert not errors, f"{notebook}: JavaScript errors {errors}"
    finally:
        xsrf = {c["name"]: c["value"] for c in page.context.cookies()}.get("_xsrf", "")
        for session in page.request.get(f"{base}/api/sessions").json():
            page.request.delete(f"{base}/api/sessions/{session['id']}",
                                headers={"X-XSRFToken": xsrf})
        page.close()
