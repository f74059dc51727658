"""tools/browser.py: a missing Chromium or chromedriver stops with one line that says what to install."""

import pytest

from tools import browser


def test_missing_binaries_are_named_with_what_to_run(monkeypatch, tmp_path):
    monkeypatch.setattr(browser, "CHROMIUM", str(tmp_path / "no-chromium"))
    assert str(tmp_path / "no-chromium") in browser.missing()
    with pytest.raises(FileNotFoundError, match=r"no-chromium.* missing: run `bash tools/browser_deps.sh`"):
        browser.chromium()
