"""Headless Chromium, driven by chromedriver through Selenium, with one set of flags for everything that opens a
page: the website's tests, the JupyterLab slideshow test and the PDF handout.

``CHROMIUM`` and ``CHROMEDRIVER`` name the binaries (Debian's by default; ``tools/browser_deps.sh`` installs them).
The flags keep Chromium headless, off the network it would call by itself (this machine's closed network refuses
those connections, many at a time), and inside a container (``--no-sandbox``, ``--disable-dev-shm-usage``).
"""

from __future__ import annotations

import os
from pathlib import Path

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage",
         "--disable-background-networking", "--disable-component-update", "--disable-sync")  # fmt: skip


def missing() -> list[str]:
    """The binaries that are not there (or not executable): empty when Chromium can start."""
    return [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]


def chromium(window_size: str | None = None, profile: Path | None = None, timeout: float = 120):
    """A new headless Chromium (a Selenium driver; call ``quit()`` when done).  ``profile``: a fresh, empty user-data
    folder; ``timeout``: seconds for a page load and for a script."""
    if missing():
        raise FileNotFoundError(f"{' and '.join(missing())} missing: run `bash tools/browser_deps.sh` (make test and "
                                "make handout do), or set CHROMIUM=/path CHROMEDRIVER=/path")  # fmt: skip
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    extra = ([f"--window-size={window_size}"] if window_size else []) + ([f"--user-data-dir={profile}"] if profile else [])
    for arg in (*FLAGS, *extra):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(timeout)
    driver.set_script_timeout(timeout)
    return driver
