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


def click_and_load(b, element) -> None:
    """Clicks and waits until the browser has left the current page and loaded the next.

    The old page is marked and the wait is for a complete document without the mark. (Waiting
    for the old <html> element to go stale raced with Chrome's navigation: asked about an element
    of the page being torn down, chromedriver answered "Node with given id does not belong to
    the document" instead of "stale", and the test failed once in CI.)"""
    from selenium.common.exceptions import WebDriverException  # selenium: the dev install only
    from selenium.webdriver.support.ui import WebDriverWait

    b.execute_script("window.__leaving = true")
    element.click()
    WebDriverWait(b, 15, ignored_exceptions=(WebDriverException,)).until(
        lambda d: d.execute_script(
            "return window.__leaving === undefined && document.readyState === 'complete'"
        )
    )


def admin_login(b, base_url: str, username: str, password: str) -> None:
    """Logs in to the admin through its login form."""
    from selenium.webdriver.common.by import By

    b.get(f"{base_url}/admin/login/")
    b.find_element(By.NAME, "username").send_keys(username)
    b.find_element(By.NAME, "password").send_keys(password)
    click_and_load(b, b.find_element(By.CSS_SELECTOR, "input[type=submit]"))
