"""Database sessions that ignore malformed session cookies instead of querying with them."""

from __future__ import annotations

from django.contrib.sessions.backends import db


class SessionStore(db.SessionStore):
    def _validate_session_key(self, key: str | None) -> bool:
        # Django's own rule is "at least 8 characters". Its keys are [a-z0-9]; anything else (a NUL
        # byte from a fuzzer or an attacker) would reach PostgreSQL, which answers with an error.
        return key is not None and len(key) >= 8 and key.isascii() and key.isalnum()
