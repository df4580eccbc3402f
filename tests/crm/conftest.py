"""The internal CRM's tests run the service with CRM_PROVIDERS=internal,mock."""

from __future__ import annotations

import pytest

from app.settings import Settings
from tests.conftest import make_settings


@pytest.fixture
def settings(db_url: str) -> Settings:
    return make_settings(db_url, crm_providers="internal,mock")
