"""Typed reading of one environment variable: a malformed value is a ConfigError naming it.

The primitives every accessor of this package reads with (text, booleans, numbers, whole
numbers), plus the two debugging switches that must never fail: DEBUG and HOTELBOT_DEBUG.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping

from hotelbot_cli.errors import ConfigError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def environment(env: Mapping[str, str] | None) -> Mapping[str, str]:
    """The mapping to read: ``env``, or this process's environment when None."""
    return os.environ if env is None else env


def _env_bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean", "use true or false")


def _env_number(env: Mapping[str, str], name: str, default: float, minimum: float = 0) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None
    if value < minimum:
        raise ConfigError(f"{name}={raw!r} must be at least {minimum:g}")
    return value


def debug_echo(env: Mapping[str, str]) -> bool:
    """``DEBUG`` as SQLAlchemy echo: a true boolean echoes; anything else does not.

    DEBUG is a generic name other tools set to all kinds of values (``DEBUG='*'`` for
    node's debug, ``DEBUG=express:*``…): only 1/true/yes/on turns echo on, and a value
    that is not a boolean is ignored instead of making every command fail.
    """
    return (env.get("DEBUG") or "").strip().lower() in _TRUE


def env_text(name: str, env: Mapping[str, str] | None = None) -> str | None:
    """A text variable, stripped; None when unset or blank (blank means "not set")."""
    raw = environment(env).get(name)
    return raw.strip() if raw and raw.strip() else None


def env_bool(name: str, default: bool, env: Mapping[str, str] | None = None) -> bool:
    """A boolean variable (1/true/yes/on, 0/false/no/off); anything else is a ConfigError."""
    return _env_bool(environment(env), name, default)


def env_number(
    name: str, default: float, env: Mapping[str, str] | None = None, minimum: float = 0
) -> float:
    """A number variable, at least ``minimum``; blank is the default; else a ConfigError."""
    return _env_number(environment(env), name, default, minimum)


def env_count(
    name: str, default: int, env: Mapping[str, str] | None = None, minimum: int = 0
) -> int:
    """A whole-number variable (``5``, not ``5.5`` or ``five``); else a ConfigError."""
    value = _env_number(environment(env), name, default, minimum)
    if not math.isfinite(value) or value != int(value):
        raise ConfigError(f"{name}={environment(env).get(name)!r} is not a whole number")
    return int(value)


def debug_requested(env: Mapping[str, str] | None = None) -> bool:
    """HOTELBOT_DEBUG: 1/true/yes shows tracebacks; anything else does not.

    Read before anything else, to decide how errors are shown: a malformed value must not
    itself become an error nobody can debug, so it is ignored as DEBUG's is.
    """
    return (environment(env).get("HOTELBOT_DEBUG") or "").strip().lower() in {"1", "true", "yes"}
