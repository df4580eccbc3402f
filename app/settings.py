"""Configuration from the environment (and `.env`), grouped by area; all in `.env.example`."""

from __future__ import annotations

import logging
from datetime import timedelta
from enum import StrEnum
from functools import cached_property
from typing import Literal

from pydantic import AnyHttpUrl, ByteSize, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

log = logging.getLogger(__name__)

KNOWN_PROVIDERS = ("mock", "internal", "hubspot", "treadsoft")
SCOPES = ("sync", "ops")


def env_config(prefix: str = "") -> SettingsConfigDict:
    """Environment (or .env) with an optional prefix; empty values mean unset; errors never
    echo the input, which may hold secrets."""
    return SettingsConfigDict(
        env_prefix=prefix,
        env_file=".env",
        env_ignore_empty=True,
        extra="ignore",
        hide_input_in_errors=True,
    )


class _Env(BaseSettings):
    model_config = env_config()


class AppEnv(StrEnum):
    development = "development"
    production = "production"


class ApiKey:
    """One `name:scope:key` entry of API_KEYS."""

    __slots__ = ("key", "name", "scope")

    def __init__(self, name: str, scope: str, key: str) -> None:
        self.name, self.scope, self.key = name, scope, key

    def __repr__(self) -> str:  # never show the key itself
        return f"ApiKey(name={self.name!r}, scope={self.scope!r})"


class HubSpotSettings(_Env):
    model_config = env_config("HUBSPOT_")

    access_token: SecretStr | None = None
    base_url: AnyHttpUrl = AnyHttpUrl("https://api.hubapi.com")
    app_secret: SecretStr | None = None
    rate_limit: int = Field(
        100, ge=1, description="requests per rolling 10 s, shared by all workers"
    )
    # Seconds added to the 10-s window when spacing requests. Grants are timed from each
    # answer (the latest HubSpot can have counted the call), so this only covers clock
    # granularity.
    rate_margin: float = Field(0.1, ge=0, le=5)
    # HubSpot: "The search endpoints are rate limited to five requests per second per account"
    # (https://developers.hubspot.com/docs/api-reference/search/guide).
    search_rate_limit: int = Field(
        5, ge=1, description="search requests per second, shared by all workers"
    )
    search_rate_margin: float = Field(0.02, ge=0, le=1)
    timeout: float = Field(15.0, gt=0, description="seconds per HTTP request")
    listing_object_type: str = Field("0-420", min_length=1)
    # Custom unique-value properties holding the website ids (see README: HubSpot setup).
    listing_id_property: str = "website_property_id"
    booking_id_property: str = "website_booking_id"
    enquiry_id_property: str = "website_enquiry_id"
    enquiry_object: Literal["deal", "lead"] = "deal"
    deal_pipeline: str = "default"
    # HubSpot's daily limit resets at midnight in the account's time zone.
    account_timezone: str = "UTC"

    @field_validator("account_timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"HUBSPOT_ACCOUNT_TIMEZONE: unknown time zone {value!r}") from None
        return value


class TreadSoftSettings(_Env):
    model_config = env_config("CRM_API_")

    url: AnyHttpUrl | None = None
    key: SecretStr | None = None
    secret: SecretStr | None = None
    timeout: float = Field(15.0, gt=0, description="seconds per HTTP request")


class MockSettings(_Env):
    """Faults the mock provider injects, for demos and tests (also settable at runtime)."""

    model_config = env_config("MOCK_")

    fault: Literal["transient", "timeout", "rate_limit", "reject"] | None = None
    fault_rate: float = Field(1.0, ge=0, le=1)
    fault_count: int | None = Field(None, ge=0, description="only the next N deliveries")
    retry_after: float = Field(1.0, ge=0)
    latency_ms: int = Field(0, ge=0)


class DeliverySettings(_Env):
    """How the worker delivers: retries, the dead-letter horizon, leases, the circuit breaker."""

    model_config = env_config("DELIVERY_")

    backoff_base: float = Field(1.0, gt=0, description="seconds before the first retry")
    backoff_max: float = Field(3600.0, gt=0, description="the longest wait between retries")
    # A record failing (5xx, timeouts) for longer than this is dead; until then it is retried.
    # Seconds, or ISO 8601 (P3D). Stripe retries its webhooks for up to three days.
    retry_horizon: timedelta = Field(timedelta(days=3), gt=timedelta(0))
    lease_seconds: float = Field(
        60.0, gt=0, description="renewed every third of it while a delivery runs"
    )
    claim_batch: int = Field(500, ge=1)
    poll_interval: float = Field(0.5, gt=0)
    provider_timeout: float = Field(30.0, gt=0)
    # Circuit breaker: this many failing calls in a row hold a provider; it is probed with one
    # record after `breaker_cooldown` seconds, doubling up to `breaker_cooldown_max`.
    breaker_threshold: int = Field(5, ge=1)
    breaker_cooldown: float = Field(5.0, gt=0)
    breaker_cooldown_max: float = Field(60.0, gt=0)


class BulkSettings(_Env):
    """Bulk resync: how records are walked and how long `?wait=true` waits."""

    model_config = env_config("BULK_")

    chunk_size: int = Field(1000, ge=1, le=10_000, description="records per enqueue transaction")
    wait_seconds: float = Field(300.0, ge=0, description="longest ?wait=true before a 202")
    lease_seconds: float = Field(60.0, gt=0, description="a dead runner's run is resumed after")
    poll_interval: float = Field(0.5, gt=0, description="how often a run checks it is done")


class PullSettings(_Env):
    """Bringing CRM-side edits back (see README: Pulling from HubSpot)."""

    model_config = env_config("PULL_")

    enabled: bool = True  # the scheduled pull, run by workers
    interval_seconds: float = Field(3600.0, gt=0, description="one scheduled pull per period")
    # Re-read this much before the cursor: HubSpot's search index lags writes a little.
    overlap_seconds: float = Field(300.0, ge=0)
    strategy: Literal["append", "overwrite"] = "overwrite"  # of scheduled and webhook pulls
    page_size: int = Field(200, ge=1, le=200, description="search results per request")
    # A 429 during a pull waits (the client holds the budget for Retry-After) and the pull goes
    # on; past this many seconds of waits in one request (HubSpot's daily budget spent), the
    # pull stops as `paused`, its pages kept, and the next one resumes from the cursor.
    rate_limit_wait_seconds: float = Field(120.0, ge=0, le=3600)


class UiSettings(_Env):
    """The ops dashboard at /ui (see README: The dashboard)."""

    model_config = env_config("UI_")

    # Signs the session cookie. Unset: derived from API_KEYS (every replica derives the same;
    # changing the keys signs everyone out); in development without keys, random per process.
    session_secret: SecretStr | None = None
    session_hours: float = Field(8.0, gt=0, le=720, description="a sign-in lasts this long")
    # Secure cookie flag. Unset: always in production; in development only over https.
    cookie_secure: bool | None = None

    @field_validator("session_secret")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("UI_SESSION_SECRET must be at least 32 characters")
        return value


class Settings(_Env):
    app_env: AppEnv = AppEnv.development
    database_url: str = "sqlite+aiosqlite:///./crm_sync.db"
    # PostgreSQL connections each process keeps open (SQLite keeps one: it has one writer).
    # Past the pool a unit of work waits for a connection; `database_max_overflow` more may be
    # opened instead, each closed again on return (and paid for again: connect, prepare).
    database_pool_size: int = Field(20, ge=1, le=500)
    database_max_overflow: int = Field(0, ge=0, le=500)
    crm_providers: str = "mock"
    crm_enabled: bool = True
    api_keys: SecretStr | None = None
    worker_in_process: bool = True
    sync_wait_seconds: float = Field(5.0, ge=0)
    stripe_webhook_secret: SecretStr | None = None
    # Optional restricted key (read subscriptions and invoices): events of those are applied
    # from the object read from Stripe at processing time (app/webhooks/stripe_fetch.py).
    stripe_api_key: SecretStr | None = None
    phone_default_region: str = "GB"
    public_base_url: AnyHttpUrl | None = None
    log_level: str = "INFO"
    # The largest request body taken (a 1,000-record batch is well under 1 MB): 413 past it.
    max_body_size: ByteSize = Field(ByteSize(5 * 1024 * 1024), gt=0)
    # Keys the hash an erasure's audit row keeps of the email (HMAC-SHA256): the same email
    # gives the same hash, so "was this person erased?" can be answered without keeping them.
    erasure_hash_key: SecretStr | None = None

    hubspot: HubSpotSettings = Field(default_factory=HubSpotSettings)
    treadsoft: TreadSoftSettings = Field(default_factory=TreadSoftSettings)
    mock: MockSettings = Field(default_factory=MockSettings)
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)
    bulk: BulkSettings = Field(default_factory=BulkSettings)
    pull: PullSettings = Field(default_factory=PullSettings)
    ui: UiSettings = Field(default_factory=UiSettings)

    @field_validator("crm_providers")
    @classmethod
    def _known_providers(cls, value: str) -> str:
        names = [n.strip() for n in value.split(",") if n.strip()]
        unknown = [n for n in names if n not in KNOWN_PROVIDERS]
        if unknown or not names:
            raise ValueError(
                f"CRM_PROVIDERS: unknown provider(s) {unknown or value!r}; "
                f"choose from {', '.join(KNOWN_PROVIDERS)}"
            )
        return ",".join(dict.fromkeys(names))

    @field_validator("phone_default_region")
    @classmethod
    def _region(cls, value: str) -> str:
        return value.upper()

    @model_validator(mode="after")
    def _production_needs_keys(self) -> Settings:
        if self.app_env is AppEnv.production and not self.keys:
            raise ValueError("API_KEYS must be set outside development")
        self.keys  # noqa: B018 - parse now so a malformed entry fails at start-up
        return self

    @property
    def providers(self) -> list[str]:
        """The providers deliveries go to, in order; the first one's CRM id is the primary."""
        if not self.crm_enabled:
            return ["mock"]
        return self.crm_providers.split(",")

    @cached_property
    def keys(self) -> list[ApiKey]:
        """The API keys (their repr never shows the secret)."""
        if self.api_keys is None:
            return []
        found: list[ApiKey] = []
        for entry in self.api_keys.get_secret_value().split(","):
            if not entry.strip():
                continue
            parts = entry.strip().split(":", 2)
            if len(parts) != 3 or parts[1] not in SCOPES or not parts[2]:
                name = parts[0] if parts else "?"
                raise ValueError(
                    f"API_KEYS: entry {name!r} must be name:scope:key with scope sync or ops"
                )
            found.append(ApiKey(*parts))
        return found

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
