"""No request from the dashboard leaves the service's origin: every page's resources and live
requests are the service's own (asserted on each page in every browser test, see Browser), and
the Content-Security-Policy makes the browser refuse, and report, anything else."""

from __future__ import annotations

import httpx

from tests.ui.conftest import Browser


def _csp_reports(api: httpx.Client) -> float:
    total = 0.0
    for line in api.get("/metrics").text.splitlines():
        if line.startswith("crm_sync_ui_csp_reports_total{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_a_request_to_another_origin_is_refused_by_the_browser_and_reported(
    browser: Browser, ops_api: httpx.Client
) -> None:
    before = _csp_reports(ops_api)
    browser.sign_in()
    browser.go("/ui/")
    elsewhere = browser.base.rsplit(":", 1)[0] + ":9/probe"  # another port: another origin
    outcome = browser.driver.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        fetch(arguments[0]).then(() => done('fetched'), (e) => done('refused: ' + e.name));
        """,
        elsewhere,
    )
    assert outcome == "refused: TypeError"
    assert browser.driver.execute_script("return window.__csp") == [f"connect-src {elsewhere}"]
    browser.wait_for(lambda: _csp_reports(ops_api) == before + 1)  # the browser told us
    browser.driver.execute_script("window.__csp = []")  # seen; the page is otherwise clean

    resources = browser.driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    ours = [url for url in resources if url.startswith(browser.base + "/ui/")]
    assert any("/ui/static/vendor/htmx-2.0.11.min.js" in url for url in ours)
    assert any("/ui/static/app.css" in url for url in ours)
    assert resources == ours  # the refused request was never sent
