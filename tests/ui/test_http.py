"""The dashboard over HTTP, without a browser: who gets in, what a POST needs, the headers
every answer carries, and errors as pages."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import itsdangerous.timed
import pytest

from app.main import create_app
from app.providers.mock import Faults
from tests.conftest import OPS_KEY, SYNC_KEY, make_settings

VENDOR = Path(__file__).resolve().parents[2] / "app" / "ui" / "static" / "vendor"
PAGES = ["/ui/", "/ui/records", "/ui/failures", "/ui/logs", "/ui/bulk", "/ui/webhooks", "/ui/leads"]


def browser_like(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


def csrf_of(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
    assert found, "the page has no CSRF field"
    return found.group(1)


async def sign_in(web: httpx.AsyncClient, key: str = OPS_KEY) -> httpx.Response:
    form = await web.get("/ui/login")
    return await web.post("/ui/login", data={"key": key, "csrf": csrf_of(form), "next": "/ui/"})


async def test_every_page_needs_an_ops_sign_in_and_carries_the_security_headers(app) -> None:
    async with browser_like(app) as web:
        for path in PAGES:
            away = await web.get(path)
            assert away.status_code == 303
            assert away.headers["location"].startswith("/ui/login?next=")
        fragment = await web.get("/ui/overview/live", headers={"HX-Request": "true"})
        assert fragment.status_code == 401 and fragment.headers["HX-Redirect"].startswith(
            "/ui/login"
        )
        assert (await sign_in(web)).headers["location"] == "/ui/"
        for path in PAGES:
            page = await web.get(path)
            assert page.status_code == 200, path
            csp = page.headers["content-security-policy"]
            assert "default-src 'self'" in csp and "script-src 'self'" in csp
            assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
            assert page.headers["x-frame-options"] == "DENY"
            assert page.headers["cache-control"] == "no-store"
            assert "<script>" not in page.text and " style=" not in page.text  # nothing inline
            assert "https://" not in page.text  # no third-party asset


async def test_the_sign_in_form_refuses_a_post_without_its_token_and_other_keys(app) -> None:
    async with browser_like(app) as web:
        no_token = await web.post("/ui/login", data={"key": OPS_KEY})
        assert no_token.status_code == 403 and "CSRF" in no_token.text
        assert (await web.get("/ui/")).status_code == 303  # nobody signed in

        wrong = await sign_in(web, "not-a-key")
        assert wrong.status_code == 401 and "That key is not valid." in wrong.text
        sync = await sign_in(web, SYNC_KEY)
        assert sync.status_code == 403 and "needs an ops key" in sync.text
        assert (await web.get("/ui/")).status_code == 303
        assert SYNC_KEY not in sync.text and "not-a-key" not in wrong.text  # keys never echoed


async def test_a_post_without_the_csrf_token_changes_nothing(app, client, ops, mock) -> None:
    mock.faults = Faults(mode="reject")
    body = {"userId": "u1", "name": "Ann"}
    assert (await client.post("/api/crm/sync/owner", json=body)).status_code == 502
    mock.faults = Faults()
    async with browser_like(app) as web:
        await sign_in(web)
        token = csrf_of(await web.get("/ui/failures"))
        group = {"provider": "mock", "status": "failed"}

        refused = await web.post("/ui/failures/retry", data=group)
        assert refused.status_code == 403
        forged = await web.post(
            "/ui/failures/retry", data=group, headers={"X-CSRF-Token": "0" * 64}
        )
        assert forged.status_code == 403
        still = await ops.get("/api/crm/sync/owner", params={"userId": "u1"})
        assert still.json()["syncStatus"] == "failed"

        done = await web.post("/ui/failures/retry", data=group, headers={"X-CSRF-Token": token})
        assert done.status_code == 200 and "1 job requeued" in done.text
        assert (await web.post("/ui/logout", data={"csrf": token})).status_code == 303
        assert (await web.get("/ui/failures")).status_code == 303


async def test_a_session_ends_with_its_expiry_and_with_its_key(db_url, monkeypatch) -> None:
    secret = "s" * 40
    first = create_app(make_settings(db_url, ui={"session_secret": secret}))
    async with first.router.lifespan_context(first), browser_like(first) as web:
        await sign_in(web)
        cookie = web.cookies["crm_sync_ui"]
        assert (await web.get("/ui/")).status_code == 200

        eight_hours_on = itsdangerous.timed.time.time() + 8 * 3600 + 5
        monkeypatch.setattr(
            itsdangerous.timed, "time", SimpleNamespace(time=lambda: eight_hours_on)
        )
        assert (await web.get("/ui/")).status_code == 303
        monkeypatch.undo()

    rotated = make_settings(
        db_url, api_keys=f"ops:ops:{OPS_KEY}-rotated", ui={"session_secret": secret}
    )
    second = create_app(rotated)
    async with second.router.lifespan_context(second), browser_like(second) as web:
        web.cookies.set("crm_sync_ui", cookie, domain="test", path="/ui")
        assert (await web.get("/ui/")).status_code == 303  # same name, another key: signed out
        tampered = cookie[:-2] + ("AA" if not cookie.endswith("AA") else "BB")
        web.cookies.set("crm_sync_ui", tampered, domain="test", path="/ui")
        assert (await web.get("/ui/")).status_code == 303


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil.example"])
async def test_signing_in_never_sends_the_browser_to_another_site(app, target: str) -> None:
    async with browser_like(app) as web:
        form = await web.get("/ui/login")
        answer = await web.post(
            "/ui/login", data={"key": OPS_KEY, "csrf": csrf_of(form), "next": target}
        )
        assert answer.status_code == 303 and answer.headers["location"] == "/ui/"


async def test_in_production_the_cookie_is_secure(db_url) -> None:
    production = create_app(make_settings(db_url, app_env="production"))
    async with production.router.lifespan_context(production), browser_like(production) as web:
        signed = await sign_in(web)
        cookie = signed.headers["set-cookie"]
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
        assert "Max-Age=28800" in cookie and "Path=/ui" in cookie


async def test_without_keys_in_development_the_dashboard_is_open_but_posts_need_a_token(
    db_url,
) -> None:
    open_app = create_app(make_settings(db_url, api_keys=None))
    async with open_app.router.lifespan_context(open_app), browser_like(open_app) as web:
        page = await web.get("/ui/bulk")
        assert page.status_code == 200 and "auth off" in page.text
        assert (await web.post("/ui/bulk", data={"syncType": "all"})).status_code == 403
        started = await web.post(
            "/ui/bulk", data={"syncType": "all"}, headers={"X-CSRF-Token": csrf_of(page)}
        )
        assert started.status_code in (200, 286) and "data-bulk=" in started.text


async def test_bad_input_gets_a_page_naming_the_field(app) -> None:
    async with browser_like(app) as web:
        await sign_in(web)
        since = await web.get("/ui/logs", params={"since": "last tuesday"})
        assert since.status_code == 422 and "since:" in since.text
        unknown = await web.get("/ui/records", params={"kind": "owner", "id": "nobody"})
        assert unknown.status_code == 404 and "Owner nobody is not known here" in unknown.text
        kind = await web.get("/ui/records", params={"kind": "spaceship", "id": "x"})
        assert kind.status_code == 422 and "kind:" in kind.text
        token = csrf_of(await web.get("/ui/bulk"))
        bulk = await web.post(
            "/ui/bulk", data={"syncType": "planets", "csrf": token}, headers={"HX-Request": "true"}
        )
        assert bulk.status_code == 422 and "syncType" in bulk.text
        assert 'role="alert"' in bulk.text and "<html" not in bulk.text  # a fragment for htmx
        event = await web.get("/ui/webhooks/99")
        assert event.status_code == 404 and "not in the inbox" in event.text


async def test_only_the_dashboard_files_are_served_and_htmx_is_the_pinned_one(app, ops) -> None:
    async with browser_like(app) as web:
        css = await web.get("/ui/static/app.css")
        assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
        assert "immutable" in css.headers["cache-control"]
        for path in ("/ui/static/../settings.py", "/ui/static/vendor/README.md", "/ui/static/x.js"):
            assert (await web.get(path)).status_code == 404
        htmx = await web.get("/ui/static/vendor/htmx-2.0.11.min.js")
    readme = (VENDOR / "README.md").read_text()
    assert hashlib.sha256(htmx.content).hexdigest() in readme
    assert (VENDOR / "htmx-LICENSE").read_text().startswith("Zero-Clause BSD")

    report = {
        "csp-report": {
            "document-uri": "http://test/ui/",
            "blocked-uri": "https://cdn.example",
            "effective-directive": "script-src-elem",
        }
    }
    async with browser_like(app) as web:
        sent = await web.post(
            "/ui/csp-report", json=report, headers={"Content-Type": "application/csp-report"}
        )
        made_up = {"csp-report": {"effective-directive": "x-made-up-12345"}}
        assert (await web.post("/ui/csp-report", json=made_up)).status_code == 204
        assert (await web.post("/ui/csp-report", content=b"\x00not json")).status_code == 204
    assert sent.status_code == 204
    metrics = (await ops.get("/metrics")).text
    assert 'crm_sync_ui_csp_reports_total{directive="script-src-elem"}' in metrics
    assert "x-made-up" not in metrics  # anyone may post here: labels stay a known few
    assert 'crm_sync_ui_csp_reports_total{directive="other"}' in metrics
