"""Real browsers for the end-to-end tests: a plain Chromium window under Xvfb (no automation of
any kind: a fresh profile, no remote debugging, no driver), and Chromium driven by Selenium.

Debian packages: chromium, chromium-driver, xvfb; PyPI: selenium. Tests skip with the reason
when one is missing. Every process started here is stopped by its process group.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
ROOT = os.geteuid() == 0  # Chromium's sandbox does not run as root


def chromium_binary() -> str | None:
    return next((found for name in CHROMIUM_NAMES if (found := shutil.which(name))), None)


def require_plain_browser() -> None:
    missing = [name for name, found in (("chromium", chromium_binary()), ("Xvfb", shutil.which("Xvfb")))
               if not found]
    if missing:
        pytest.skip(f"{' and '.join(missing)} not installed (Debian: apt-get install chromium xvfb)")


def require_selenium() -> None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        pytest.skip("selenium not installed (pip install -e '.[dev]')")
    if not chromium_binary() or not shutil.which("chromedriver"):
        pytest.skip("chromium or chromedriver not installed (Debian: apt-get install chromium chromium-driver)")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait(timeout=15)


@contextmanager
def xvfb() -> Iterator[str]:
    """A virtual display of its own; yields its DISPLAY value."""
    read, write = os.pipe()
    process = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
                               pass_fds=(write,), start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write)
    try:
        with os.fdopen(read) as pipe:
            number = pipe.readline().strip()
        if not number:
            raise RuntimeError("Xvfb did not report its display")
        yield f":{number}"
    finally:
        _stop(process)


@contextmanager
def plain_chromium(url: str) -> Iterator[subprocess.Popen]:
    """Chromium opened on ``url`` in a window, as a person would start it: a fresh profile and
    no automation switch, remote debugging port or driver."""
    with xvfb() as display, tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        args = [chromium_binary(), f"--user-data-dir={profile}", "--no-first-run", "--no-default-browser-check",
                "--password-store=basic", *(["--no-sandbox"] if ROOT else []), url]
        env = {**os.environ, "DISPLAY": display}
        log = Path(profile) / "chromium.log"
        with open(log, "wb") as out:
            process = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            yield process
        finally:
            _stop(process)


@contextmanager
def selenium_chromium(display: str | None = None) -> Iterator:
    """Chromium driven by Selenium through chromedriver: in a window on ``display`` (its headers
    are a person's browser's), or headless (the new headless mode) without one."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    with tempfile.TemporaryDirectory(prefix="selenium-profile-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = _real_chromium()
        for argument in (*([] if display else ["--headless=new"]), f"--user-data-dir={profile}",
                         "--window-size=1280,800", *(["--no-sandbox"] if ROOT else [])):
            options.add_argument(argument)
        env = {**os.environ, "DISPLAY": display} if display else None
        service = Service(executable_path=shutil.which("chromedriver"), env=env)
        driver = webdriver.Chrome(options=options, service=service)
        try:
            driver.set_page_load_timeout(120)
            yield driver
        finally:
            driver.quit()


def _real_chromium() -> str:
    """Debian's /usr/bin/chromium is a shell wrapper; chromedriver wants the browser itself."""
    for candidate in ("/usr/lib/chromium/chromium", "/usr/lib/chromium-browser/chromium-browser"):
        if os.access(candidate, os.X_OK):
            return candidate
    binary = chromium_binary()
    assert binary is not None  # require_selenium() said so
    return binary
