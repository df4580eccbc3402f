"""Creating crm-sync's property group and custom properties in a HubSpot account, from the
definitions (app/providers/hubspot/properties.py), through the CRM properties API:
`GET/POST /crm/v3/properties/{objectType}` and `.../groups`
(https://developers.hubspot.com/docs/api-reference/latest/crm/properties/guide).

Idempotent: what exists is left alone (a second run creates nothing); a property that exists
with another type, fieldType, uniqueness or other options is reported as drift, never changed
(changing a live property's type can lose data in HubSpot: a person decides)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.providers.base import FailureKind, ProviderError
from app.providers.http import json_of, message_of
from app.providers.hubspot import properties
from app.providers.hubspot.client import HubSpotClient
from app.providers.hubspot.properties import PropertyDef
from app.settings import HubSpotSettings


@dataclass
class SetupReport:
    """What setup found and did. Each entry is "objectType name" (a group: "objectType group
    name"); drift entries say what differs."""

    created: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # --check: what a run would create
    existing: list[str] = field(default_factory=list)
    drift: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Everything exists as defined."""
        return not self.missing and not self.drift


def object_type(settings: HubSpotSettings, name: str) -> str:
    """The path's object type for our object name (listings: the configured type)."""
    return settings.listing_object_type if name == "listings" else name


def _differences(wanted: PropertyDef, have: dict[str, Any]) -> list[str]:
    found = []
    if have.get("type") != wanted.type:
        found.append(f"type {have.get('type')} (want {wanted.type})")
    if have.get("fieldType") != wanted.fieldType:
        found.append(f"fieldType {have.get('fieldType')} (want {wanted.fieldType})")
    if bool(have.get("hasUniqueValue")) != wanted.unique:
        found.append(f"hasUniqueValue {bool(have.get('hasUniqueValue'))} (want {wanted.unique})")
    options = {str(o.get("value")) for o in have.get("options") or []}
    if wanted.allowed and options != set(wanted.allowed):
        missing = sorted(set(wanted.allowed) - options)
        extra = sorted(options - set(wanted.allowed))
        found.append(f"options missing {missing}, extra {extra}")
    return found


async def _json(client: HubSpotClient, method: str, path: str, body: Any = None) -> Any:
    response = await client.request(method, path, json=body)
    payload = json_of(response)
    if response.status_code >= 400:
        raise ProviderError(
            FailureKind.rejected,
            f"HubSpot {response.status_code} on {method} {path}: {message_of(payload)}",
            http_status=response.status_code,
            response=payload,
        )
    return payload


async def run_setup(
    client: HubSpotClient, settings: HubSpotSettings, *, check: bool = False
) -> SetupReport:
    """Create (or with `check`, only compare) the group and every custom property crm-sync
    writes. Raises ProviderError when HubSpot refuses a call (401, a 400 naming the field)."""
    report = SetupReport()
    wanted: dict[str, list[PropertyDef]] = {}
    for d in properties.definitions(settings):
        if d.custom:
            wanted.setdefault(object_type(settings, d.object), []).append(d)
    for otype, defs in wanted.items():
        groups = await _json(client, "GET", f"/crm/v3/properties/{otype}/groups")
        names = {g.get("name") for g in groups.get("results") or []}
        label = f"{otype} group {properties.GROUP}"
        if properties.GROUP in names:
            report.existing.append(label)
        elif check:
            report.missing.append(label)
        else:
            body = {"name": properties.GROUP, "label": properties.GROUP_LABEL}
            await _json(client, "POST", f"/crm/v3/properties/{otype}/groups", body)
            report.created.append(label)
        listing = await _json(client, "GET", f"/crm/v3/properties/{otype}")
        have = {p.get("name"): p for p in listing.get("results") or []}
        for d in defs:
            label = f"{otype} {d.name}"
            if d.name in have:
                differs = _differences(d, have[d.name])
                if differs:
                    report.drift.append(f"{label}: {'; '.join(differs)}")
                else:
                    report.existing.append(label)
            elif check:
                report.missing.append(label)
            else:
                await _json(client, "POST", f"/crm/v3/properties/{otype}", d.create_body())
                report.created.append(label)
    return report
