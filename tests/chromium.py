"""A headless Chromium driven by Selenium, for the tests that click through in a real browser.

Where Debian's ``chromium`` and ``chromium-driver`` (or Selenium) are not
installed the tests that need them are skipped, except under CI (``CI``
set), where they fail: CI installs them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    pass

#: Flags for a quiet, self-contained headless browser that reaches nothing but 127.0.0.1.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-proxy-server",
    "--window-size=1000,700",
)


def _missing(message: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI must have it", pytrace=False)
    pytest.skip(message)


@contextmanager
def headless_chromium() -> Iterator[Any]:
    """A Selenium ``WebDriver`` for a headless Chromium with a throwaway profile."""
    chromium = shutil.which("chromium")
    driver_binary = shutil.which("chromedriver")
    if chromium is None or driver_binary is None:
        _missing("chromium is not installed (apt-get install chromium chromium-driver)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _missing("selenium is not installed (pip install -e '.[test]')")
    with tempfile.TemporaryDirectory(prefix="cf-access-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = str(chromium)
        for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
            options.add_argument(flag)
        driver = webdriver.Chrome(options=options, service=Service(str(driver_binary)))
        try:
            driver.set_page_load_timeout(20)
            yield driver
        finally:
            driver.quit()
