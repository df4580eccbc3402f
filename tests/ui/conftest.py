"""Browser fixtures: the service under a real uvicorn on a free port (in a thread of its own, so
the synchronous WebDriver calls never block it), and Debian's headless Chromium driven by
Selenium through Debian's chromedriver. No browser is downloaded; the network stays local."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from selenium import webdriver
from selenium.common.exceptions import JavascriptException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from app.main import create_app
from tests.conftest import OPS_KEY, SYNC_KEY, make_settings

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# The README's pictures: `make screenshots` (UI_SCREENSHOTS=docs) writes them into docs/; any
# other run takes them just the same, into a scratch folder, so a test run leaves the tree clean.
DOCS = (
    Path(__file__).resolve().parents[2] / "docs"
    if os.environ.get("UI_SCREENSHOTS") == "docs"
    else Path(tempfile.gettempdir()) / "crm-sync-screenshots"
)
DESKTOP = (1280, 900)
PHONE = (390, 844)
WAIT = 20.0  # seconds any one thing may take to show in the browser

# Installed before any page script runs (through the DevTools protocol, which the page's policy
# does not govern): every CSP violation a page meets is kept where the test can read it.
WATCH_CSP = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', function (e) {
  window.__csp.push(e.violatedDirective + ' ' + e.blockedURI);
});
"""


class LiveServer:
    """An ASGI app (crm-sync, or a fake CRM) served by uvicorn on 127.0.0.1:port, lifespan and
    all, in a thread with its own event loop."""

    def __init__(self, app: Any, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="uvicorn", daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert self.thread.is_alive(), "the server did not start"
            assert time.monotonic() < deadline, "the server took over 30 s to start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)

    def api(self, key: str = OPS_KEY) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {key}"}, timeout=30
        )


@pytest.fixture
def live(db_url: str, free_port: Callable[[], int]) -> Iterator[LiveServer]:
    """The service on a free port with the mock provider and quick retries."""
    settings = make_settings(db_url, delivery={"retry_horizon": 0.001})
    with LiveServer(create_app(settings), free_port()) as server:
        yield server


@pytest.fixture
def ops_api(live: LiveServer) -> Iterator[httpx.Client]:
    with live.api(OPS_KEY) as client:
        yield client


@pytest.fixture
def sync_key() -> str:
    return SYNC_KEY


def _chromium() -> webdriver.Chrome:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail(
            "the browser tests need Debian's chromium and chromium-driver: "
            "apt-get install -y chromium chromium-driver (.ci/run does)"
        )
    profile = tempfile.mkdtemp(prefix="crm-sync-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        f"--window-size={DESKTOP[0]},{DESKTOP[1]}",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.__dict__["_profile"] = profile
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": WATCH_CSP})
    return driver


@pytest.fixture(scope="session")
def chromium() -> Iterator[webdriver.Chrome]:
    """One headless Chromium for the whole run (starting one takes seconds)."""
    driver = _chromium()
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(driver.__dict__["_profile"], ignore_errors=True)


class Browser:
    """The browser, pointed at one live server. Before leaving a page (and at the end of the
    test) it checks what the page loaded: nothing from another origin, no CSP violation."""

    def __init__(self, driver: webdriver.Chrome, base: str) -> None:
        self.driver, self.base = driver, base
        self.origins_checked = 0

    def go(self, path: str) -> None:
        self.check_page()
        self.driver.get(self.base + path)
        self.wait_for(
            lambda: self.driver.execute_script("return document.readyState") == "complete"
        )
        self.wait_for(lambda: self.driver.execute_script("return !!window.htmx"))

    def check_page(self) -> None:
        """Every resource this document fetched came from our origin; no CSP violation."""
        try:
            loaded = self.driver.execute_script(
                "return performance.getEntriesByType('navigation')"
                ".concat(performance.getEntriesByType('resource')).map(e => e.name)"
            )
            violations = self.driver.execute_script("return window.__csp || []")
        except JavascriptException:
            return  # no document yet
        if not self.driver.current_url.startswith(self.base):
            return  # about:blank, before the first page
        foreign = [url for url in loaded if not url.startswith(self.base + "/")]
        assert foreign == [], f"requests left the origin: {foreign}"
        assert violations == [], f"CSP violations on {self.driver.current_url}: {violations}"
        self.origins_checked += len(loaded)

    def mark(self) -> None:
        """Tag the current document; `unreloaded()` then tells whether it is still the same."""
        self.driver.execute_script("window.__notReloaded = true")

    def unreloaded(self) -> bool:
        return bool(self.driver.execute_script("return window.__notReloaded === true"))

    def find(self, css: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def finds(self, css: str) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def text(self, css: str) -> str:
        return self.find(css).text.strip()

    def wait_for(self, condition: Callable[[], Any], seconds: float = WAIT) -> Any:
        """Until `condition()` is truthy (elements replaced meanwhile are simply asked again)."""

        def check(_: Any) -> Any:
            try:
                return condition()
            except StaleElementReferenceException:
                return False

        return WebDriverWait(self.driver, seconds, poll_frequency=0.1).until(check)

    def wait_text(self, css: str, expected: str, seconds: float = WAIT) -> None:
        try:
            self.wait_for(lambda: any(e.text.strip() == expected for e in self.finds(css)), seconds)
        except Exception:
            shown = [e.text.strip() for e in self.finds(css)]
            raise AssertionError(f"{css}: wanted {expected!r}, the page shows {shown}") from None

    def sign_in(self, key: str = OPS_KEY) -> None:
        self.go("/ui/login")
        self.find("input[name=key]").send_keys(key)
        self.find("form button[type=submit]").click()
        self.wait_for(lambda: "/ui/login" not in self.driver.current_url)

    def resize(self, size: tuple[int, int]) -> None:
        """The viewport, as a phone or a desktop has it (a headless window can be any size)."""
        width, height = size
        self.driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600},
        )

    def overflows(self) -> bool:
        """Whether the page is wider than the viewport (tables scroll inside their box)."""
        return bool(
            self.driver.execute_script(
                "return document.documentElement.scrollWidth > window.innerWidth + 1"
            )
        )

    def screenshot(self, name: str) -> Path:
        """The whole page as <name>.png in DOCS (its full height, at the current width)."""
        width = self.driver.execute_script("return window.innerWidth")
        height = self.driver.execute_script("return document.documentElement.scrollHeight")
        mobile = width < 600
        self.driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {
                "width": width,
                "height": min(int(height), 4000),
                "deviceScaleFactor": 1,
                "mobile": mobile,
            },
        )
        DOCS.mkdir(exist_ok=True)
        path = DOCS / f"{name}.png"
        self.driver.save_screenshot(str(path))
        self.resize((width, PHONE[1] if mobile else DESKTOP[1]))
        return path


@contextmanager
def browsing(chromium: webdriver.Chrome, base: str) -> Iterator[Browser]:
    """A clean browser (no cookies, desktop size) on `base`; its last page checked at the end."""
    chromium.get("about:blank")
    chromium.execute_cdp_cmd("Network.clearBrowserCookies", {})
    client = Browser(chromium, base)
    client.resize(DESKTOP)
    try:
        yield client
        client.check_page()
    finally:
        chromium.get("about:blank")


@pytest.fixture
def browser(chromium: webdriver.Chrome, live: LiveServer) -> Iterator[Browser]:
    with browsing(chromium, live.url) as client:
        yield client
