"""The dashboard's session cookie and CSRF tokens: a signed, timestamped payload (itsdangerous)
naming the ops key that signed in by its name and a fingerprint, never the key itself.

Every browser gets a session id (`sid`) on its first page, before signing in, so the sign-in form
carries a CSRF token too; signing in issues a new id (no session fixation). A POST's CSRF token is
an HMAC of the session id: a page of another origin cannot read it, and it dies with the session.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, replace
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer

from app.settings import ApiKey, Settings

COOKIE = "crm_sync_ui"
_SALT = "crm-sync/ui/session/v1"
_DERIVE_LABEL = b"crm-sync/ui/session-secret/v1"


@dataclass(frozen=True, slots=True)
class UiSession:
    sid: str
    key_name: str | None = None
    key_fingerprint: str | None = None

    @property
    def signed_in(self) -> bool:
        return self.key_name is not None

    @classmethod
    def anonymous(cls) -> UiSession:
        return cls(sid=secrets.token_urlsafe(18))

    def signed_in_as(self, name: str, fingerprint: str) -> UiSession:
        """A fresh session id for the signed-in session (the old one is left behind)."""
        return replace(UiSession.anonymous(), key_name=name, key_fingerprint=fingerprint)


def session_secret(settings: Settings) -> bytes:
    """UI_SESSION_SECRET; else derived from API_KEYS (the same on every replica); else (only in
    development, where keys may be unset) random for this process."""
    configured = settings.ui.session_secret
    if configured is not None:
        return configured.get_secret_value().encode()
    if settings.api_keys is not None and settings.keys:
        material = settings.api_keys.get_secret_value().encode()
        return hmac.new(_DERIVE_LABEL, material, hashlib.sha256).digest()
    return secrets.token_bytes(32)


class SessionSigner:
    """Signs and reads session cookies; makes and checks CSRF tokens and key fingerprints.

    `max_age` is in seconds: an older cookie reads as no session at all."""

    def __init__(self, secret: bytes, max_age: float) -> None:
        self._secret = secret
        self.max_age = max_age
        self._serializer = URLSafeTimedSerializer(secret, salt=_SALT)

    def dumps(self, session: UiSession) -> str:
        payload: dict[str, Any] = {"sid": session.sid}
        if session.key_name is not None:
            payload |= {"key": session.key_name, "fp": session.key_fingerprint}
        return self._serializer.dumps(payload)

    def loads(self, raw: str | None) -> UiSession | None:
        """The session in a cookie; None if missing, tampered with, expired or malformed."""
        if not raw:
            return None
        try:
            payload = self._serializer.loads(raw, max_age=int(self.max_age))
        except BadSignature:  # SignatureExpired is one too
            return None
        if not isinstance(payload, dict) or not isinstance(payload.get("sid"), str):
            return None
        key, fp = payload.get("key"), payload.get("fp")
        if key is not None and not (isinstance(key, str) and isinstance(fp, str)):
            return None
        return UiSession(sid=payload["sid"], key_name=key, key_fingerprint=fp)

    def _mac(self, label: bytes, value: str) -> str:
        return hmac.new(self._secret, label + value.encode(), hashlib.sha256).hexdigest()

    def csrf_token(self, session: UiSession) -> str:
        return self._mac(b"csrf:", session.sid)

    def csrf_ok(self, session: UiSession | None, presented: str | None) -> bool:
        if session is None or not presented:
            return False
        return hmac.compare_digest(self.csrf_token(session), presented)

    def fingerprint(self, key: ApiKey) -> str:
        """Ties a session to the exact key that signed in: rotating the key ends the session."""
        return self._mac(b"key:", key.key)[:32]

    def still_valid(self, session: UiSession, keys: list[ApiKey]) -> ApiKey | None:
        """The ops key a signed-in session stands for, if it is still configured as it was."""
        for key in keys:
            if (
                key.name == session.key_name
                and key.scope == "ops"
                and session.key_fingerprint is not None
                and hmac.compare_digest(self.fingerprint(key), session.key_fingerprint)
            ):
                return key
        return None
