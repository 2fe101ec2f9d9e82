"""Headless Chromium for the browser tests (the campaign admin, the chat widget): where Debian's
chromium and chromium-driver are (.ci/run installs them), and the mark that skips without them.
The `browser` fixture (tests/conftest.py) drives it through Selenium."""

import shutil

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")

needs_chromium = pytest.mark.skipif(
    not (CHROMIUM and DRIVER), reason="chromium and chromedriver not installed"
)
