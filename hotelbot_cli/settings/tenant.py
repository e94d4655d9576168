"""The tenant signature's key and lifetime (HOTELBOT_TENANT_KEY, HOTELBOT_TENANT_TTL)."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

from hotelbot_cli.errors import ConfigError
from hotelbot_cli.settings.env import env_number, environment


@lru_cache(maxsize=4)
def _parse_key(raw: str) -> bytes:
    try:
        key = bytes.fromhex(raw.strip())
    except ValueError:
        key = b""
    if len(key) < 16:
        raise ConfigError(
            "HOTELBOT_TENANT_KEY is not a hex key of at least 16 bytes",
            "copy it from the file `hotelbot db create-login` wrote",
        )
    return key


def tenant_key_from_env(env: Mapping[str, str] | None = None) -> bytes | None:
    """The key that signs tenants (HOTELBOT_TENANT_KEY, hex), or None when not configured."""
    raw = environment(env).get("HOTELBOT_TENANT_KEY")
    return _parse_key(raw) if raw else None


def tenant_ttl_from_env(env: Mapping[str, str] | None = None) -> int:
    """Seconds a tenant signature stays valid (HOTELBOT_TENANT_TTL, default 300)."""
    return int(env_number("HOTELBOT_TENANT_TTL", 300, env, minimum=1))
