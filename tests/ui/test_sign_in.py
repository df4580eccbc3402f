"""Signing in to the dashboard in a real browser: only an ops key gets in; the session is a
signed, HttpOnly, SameSite=Strict cookie with an expiry; signing out ends it."""

from __future__ import annotations

import time

from tests.conftest import OPS_KEY, SYNC_KEY
from tests.ui.conftest import Browser


def test_a_wrong_key_and_a_sync_key_cannot_sign_in_an_ops_key_can(browser: Browser) -> None:
    browser.go("/ui/failures")
    assert "/ui/login" in browser.driver.current_url  # sent to sign in first

    browser.find("input[name=key]").send_keys("not-a-key-at-all")
    browser.find("form button[type=submit]").click()
    browser.wait_text("#login-error", "That key is not valid.")

    browser.find("input[name=key]").send_keys(SYNC_KEY)
    browser.find("form button[type=submit]").click()
    browser.wait_for(lambda: "scope 'sync'" in browser.text("#login-error"))
    browser.go("/ui/failures")
    assert "/ui/login" in browser.driver.current_url  # still nobody signed in

    browser.find("input[name=key]").send_keys(OPS_KEY)
    browser.find("form button[type=submit]").click()
    browser.wait_for(lambda: browser.driver.current_url.endswith("/ui/failures"))
    assert browser.text("h1") == "Failures"  # back where it was going

    [cookie] = browser.driver.get_cookies()
    assert cookie["name"] == "crm_sync_ui"
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert cookie["path"] == "/ui"
    assert 7.9 * 3600 < cookie["expiry"] - time.time() <= 8 * 3600
    assert OPS_KEY not in cookie["value"]
    assert browser.driver.execute_script("return document.cookie") == ""  # not for scripts

    browser.find(".who button").click()  # sign out
    browser.wait_for(lambda: "/ui/login" in browser.driver.current_url)
    browser.go("/ui/")
    assert "/ui/login" in browser.driver.current_url
