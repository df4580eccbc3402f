"""Configuration: refuses what would be unsafe or unclear, at start-up."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.settings import Settings


def test_outside_development_api_keys_are_required() -> None:
    with pytest.raises(ValidationError, match="API_KEYS must be set"):
        Settings(_env_file=None, app_env="production")  # type: ignore[call-arg]
    ok = Settings(_env_file=None, app_env="production", api_keys="web:sync:k1")  # type: ignore[call-arg]
    assert [(k.name, k.scope) for k in ok.keys] == [("web", "sync")]


@pytest.mark.parametrize("entry", ["justakey", "web:admin:s3cr3tvalue", "web:sync:", "web:sync"])
def test_a_malformed_key_entry_is_named_without_its_secret(entry: str) -> None:
    with pytest.raises(ValidationError) as error:
        Settings(_env_file=None, api_keys=entry)  # type: ignore[call-arg]
    assert "name:scope:key" in str(error.value)
    if entry.count(":") == 2 and entry.split(":")[2]:
        assert entry.split(":")[2] not in str(error.value)


def test_unknown_providers_are_refused_and_the_list_keeps_its_order() -> None:
    with pytest.raises(ValidationError, match="salesforce"):
        Settings(_env_file=None, crm_providers="mock,salesforce")  # type: ignore[call-arg]
    settings = Settings(_env_file=None, crm_providers=" internal , mock,internal")  # type: ignore[call-arg]
    assert settings.providers == ["internal", "mock"]


def test_keys_are_never_shown() -> None:
    settings = Settings(_env_file=None, api_keys="web:sync:supersecret")  # type: ignore[call-arg]
    assert "supersecret" not in repr(settings)
    assert "supersecret" not in repr(settings.keys)
