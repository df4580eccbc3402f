"""Our models of HubSpot's request bodies (app/providers/hubspot/spec.py)."""

from __future__ import annotations

from app.providers.hubspot import spec

UPSERT = "/crm/v3/objects/contacts/batch/upsert"


def _input(n: int) -> dict[str, object]:
    return {"idProperty": "email", "id": f"u{n}@example.com", "properties": {"firstname": "A"}}


def test_a_batch_takes_at_most_100_inputs() -> None:
    assert spec.errors("POST", UPSERT, {"inputs": [_input(n) for n in range(100)]}) == []
    too_many = spec.errors("POST", UPSERT, {"inputs": [_input(n) for n in range(101)]})
    assert too_many and too_many[0].startswith("inputs:")


def test_property_values_are_strings_and_unknown_fields_refused() -> None:
    body = {"inputs": [{"id": "1", "properties": {"max_guests": 4}, "extra": True}]}
    problems = spec.errors("POST", "/crm/v3/objects/0-420/batch/update", body)
    assert "inputs.0.properties.max_guests: Input should be a valid string" in problems
    assert any(p.startswith("inputs.0.extra:") for p in problems)


def test_operations_crm_sync_does_not_call_are_not_modelled() -> None:
    assert spec.errors("DELETE", "/crm/v3/objects/contacts/1", None) == [
        "DELETE /crm/v3/objects/contacts/1 is not an operation crm-sync models"
    ]


def test_association_and_search_bodies() -> None:
    default = "/crm/v4/associations/deals/contacts/batch/associate/default"
    pair = {"from": {"id": "1"}, "to": {"id": "2"}}
    assert spec.errors("POST", default, {"inputs": [pair]}) == []
    search = {
        "filterGroups": [{"filters": [{"propertyName": "email", "operator": "EQ", "value": "x"}]}],
        "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}, "-createdate"],
        "limit": 201,
    }
    assert spec.errors("POST", "/crm/v3/objects/notes/search", search) == [
        "limit: Input should be less than or equal to 200"
    ]
