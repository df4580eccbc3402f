"""CRM_PROVIDERS builds the HTTP adapters from settings, or says what is missing."""

from __future__ import annotations

import pytest

from app.providers.hubspot.provider import HubSpotProvider
from app.providers.ratelimit import LocalRateLimiter, PostgresRateLimiter
from app.providers.registry import ProviderContext, build_providers
from app.providers.treadsoft import TreadSoftProvider
from app.settings import HubSpotSettings, TreadSoftSettings
from tests.conftest import make_settings


async def test_hubspot_shares_its_limit_through_postgresql_or_keeps_it_in_process(
    db_url, sessions
) -> None:
    settings = make_settings(
        db_url,
        crm_providers="hubspot,treadsoft",
        hubspot=HubSpotSettings(_env_file=None, access_token="t", rate_limit=42),  # type: ignore[call-arg]
        treadsoft=TreadSoftSettings(_env_file=None, url="http://ts", key="k", secret="s"),  # type: ignore[call-arg]
    )

    providers = build_providers(ProviderContext(settings=settings, sessions=sessions))

    hubspot, treadsoft = providers["hubspot"], providers["treadsoft"]
    assert isinstance(hubspot, HubSpotProvider) and isinstance(treadsoft, TreadSoftProvider)
    assert (hubspot.batch_size, treadsoft.batch_size) == (100, 1)
    expected = PostgresRateLimiter if db_url.startswith("postgresql") else LocalRateLimiter
    assert isinstance(hubspot.client.limiter, expected) and hubspot.client.limiter.limit == 42
    for provider in providers.values():
        await provider.aclose()


@pytest.mark.parametrize(
    ("providers", "missing"),
    [
        ("hubspot", "HUBSPOT_ACCESS_TOKEN"),
        ("treadsoft", "CRM_API_URL, CRM_API_KEY, CRM_API_SECRET"),
    ],
)
def test_a_provider_without_its_credentials_refuses_to_start(
    db_url, sessions, providers, missing
) -> None:
    settings = make_settings(
        db_url,
        crm_providers=providers,
        hubspot=HubSpotSettings(_env_file=None),  # type: ignore[call-arg]
        treadsoft=TreadSoftSettings(_env_file=None),  # type: ignore[call-arg]
    )

    with pytest.raises(RuntimeError, match=missing):
        build_providers(ProviderContext(settings=settings, sessions=sessions))
