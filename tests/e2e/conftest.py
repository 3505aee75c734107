import os
import shutil
from pathlib import Path

import pytest

from tests.support.stack import Stack
from tests.support.tools import require_tool

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Flags for a headless run on a machine without a network beyond localhost.
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    stack = Stack(tmp_path_factory.mktemp("e2e"))
    try:
        yield stack.start()
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def browser():
    require_tool(CHROMIUM, "chromium")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def shots(tmp_path) -> Path:
    """Where screenshots go: DOCS_SCREENSHOTS (docs/screenshots holds the
    ones the README shows), else the test's own folder."""
    folder = Path(os.environ.get("DOCS_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder
