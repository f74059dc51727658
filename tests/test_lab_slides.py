"""`make lab` can present a notebook as slides and run it there: JupyterLab started with make lab's own command line
offers RISE (jupyterlab_rise, in the [lab] extra), and its slideshow shows the slides the cells mark, with math.

The server runs on a copy of the notebooks in a temporary folder (JupyterLab may save a notebook it opens: the
repository's files are never touched), with its own runtime and workspace folders, on a free port: tests may run
in parallel.  A screenshot is saved as build/screenshots/lab-rise.png.
"""

from __future__ import annotations

import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import nbformat
import pytest

from tools import browser as chromium_tools
from tools import marking

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = "04_xavier_and_he.ipynb"
SCREENSHOTS = ROOT / "build" / "screenshots"


def lab_command() -> list[str]:
    """The arguments `make lab` passes to `jupyter lab` (read from `make -n lab`, so the test follows the Makefile)."""
    done = subprocess.run(["make", "-n", "lab"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    (line,) = [x for x in done.stdout.splitlines() if "jupyter lab" in x]
    words = shlex.split(line)
    return words[words.index("lab") + 1 :]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab as `make lab` starts it, on copies of the notebooks: (base URL, token)."""
    tmp = tmp_path_factory.mktemp("lab")
    folder = tmp / "notebooks"
    folder.mkdir()
    for nb in ROOT.glob("notebooks/[0-9]*.ipynb"):
        shutil.copy2(nb, folder / nb.name)
    args = lab_command()
    assert args[0] == "notebooks/", args
    token, port = secrets.token_hex(16), _free_port()
    cmd = [sys.executable, "-m", "jupyterlab", str(folder), *args[1:], "--no-browser", f"--ServerApp.port={port}",
           "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--LabApp.workspaces_dir={tmp / 'ws'}"]  # fmt: skip
    if os.geteuid() == 0:
        cmd.append("--allow-root")  # Jupyter refuses root without it (CI containers run as root)
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"), "JUPYTER_CONFIG_DIR": str(tmp / "config")}
    log = (tmp / "lab.log").open("w")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5) as resp:
                    if resp.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError):
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"JupyterLab did not start: {(tmp / 'lab.log').read_text()[-3000:]}")
            time.sleep(0.5)
        yield base, token, tmp / "lab.log"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the server and the kernels it started
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Headless Chromium; a missing binary fails the test with the one line that says what to install."""
    driver = chromium_tools.chromium(window_size="1400,900", profile=tmp_path_factory.mktemp("chromium-lab"))
    yield driver
    driver.quit()


def _wait(driver, script: str, seconds: float = 120):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.5)
    return None


def _click(driver, selector: str, seconds: float = 60):
    """Click like a user, once JupyterLab's splash screen (shown while it loads, longer on a busy machine) and any
    transient overlay are gone; the last interception's message if something still covers the button."""
    from selenium.common.exceptions import ElementClickInterceptedException
    from selenium.webdriver.common.by import By

    _wait(driver, "return !document.querySelector('#jupyterlab-splash')", seconds)
    deadline, error = time.monotonic() + seconds, None
    while time.monotonic() < deadline:
        try:
            driver.find_element(By.CSS_SELECTOR, selector).click()
            return
        except ElementClickInterceptedException as exc:
            error = exc
            time.sleep(0.5)
    raise AssertionError(f"{selector} stayed covered for {seconds} s: {error.msg if error else ''}")


def test_make_lab_offers_the_slideshow_and_rise_shows_the_marked_slides(lab, browser):
    from selenium.webdriver.common.by import By

    base, token, log = lab
    browser.get(f"{base}/lab/tree/{NOTEBOOK}?token={token}")
    button = _wait(browser, "return document.querySelector('[data-command=\"RISE:preview\"]')")
    assert button, f"no RISE button in the notebook's toolbar (is jupyterlab_rise installed?) {log.read_text()[-2000:]}"
    title = browser.execute_script("return arguments[0].getAttribute('title') || arguments[0].innerText", button)
    assert "Slideshow" in title and "Alt+R" in title, title
    _click(browser, '[data-command="RISE:preview"]')  # what Alt+R does
    assert _wait(browser, "return document.querySelector('iframe[src*=\"/rise/\"]')"), "the slideshow did not open"
    browser.switch_to.frame(browser.find_element(By.CSS_SELECTOR, 'iframe[src*="/rise/"]'))
    try:
        leaves = "Array.from(document.querySelectorAll('.reveal .slides section')).filter(s => !s.querySelector('section'))"
        assert _wait(browser, f"return {leaves}.length"), "RISE drew no slide"
        assert _wait(browser, "return document.querySelectorAll('.reveal mjx-container').length", 60), "no math typeset"
        expected = marking.expected_slides(nbformat.read(ROOT / "notebooks" / NOTEBOOK, as_version=4))
        assert browser.execute_script(f"return {leaves}.length") == expected
        first = browser.execute_script("return document.querySelector('.reveal .slides section').innerText")
        assert "Xavier and He" in first
    finally:
        browser.switch_to.default_content()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SCREENSHOTS / "lab-rise.png"))
