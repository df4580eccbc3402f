"""Every router of the dashboard, for app.main to mount."""

from __future__ import annotations

from app.ui import assets, auth, bulk, failures, leads, logs, overview, records, webhooks

routers = [
    m.router for m in (assets, auth, overview, records, failures, logs, bulk, webhooks, leads)
]
