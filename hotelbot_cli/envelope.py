"""The one envelope of every JSON document hotelbot writes: ``schema_version`` and ``tool``.

``{"schema_version": N, "tool": "hotelbot <command>", ...payload}``: the payload's fields
stay at the top level, so a reader of ``doc["ok"]`` keeps working; ``tool`` says which
command wrote it and ``schema_version`` which shape (a change that breaks a reader bumps it,
per command). rls-check and db stats already wrote ``schema_version``; bench's old
``{"format": "hotelbot.bench", "version": 1}`` is still read (:func:`read`, ``legacy``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hotelbot_cli.errors import UsageError

KEYS = ("schema_version", "tool")


def tool_name(command: str) -> str:
    """``db check`` -> ``hotelbot db check`` (the ``tool`` field)."""
    return f"hotelbot {command}"


def wrap(command: str, payload: Mapping[str, Any], version: int = 1) -> dict[str, Any]:
    """``payload`` under the envelope of ``command``'s documents, shape ``version``.

    A payload that carries ``schema_version`` or ``tool`` itself must agree with them (the
    monitor's snapshot names its own version): two answers to one question would be a bug.
    """
    doc: dict[str, Any] = {"schema_version": version, "tool": tool_name(command)}
    for key in KEYS:
        if key in payload and payload[key] != doc[key]:
            raise ValueError(f"payload {key} {payload[key]!r} is not {doc[key]!r}")
    doc.update((k, v) for k, v in payload.items() if k not in KEYS)
    return doc


def is_enveloped(document: Any) -> bool:
    """True when ``document`` is an object with a whole-number version and a hotelbot tool."""
    return (
        isinstance(document, dict)
        and type(document.get("schema_version")) is int
        and isinstance(document.get("tool"), str)
        and document["tool"].startswith("hotelbot ")
    )


def read(
    document: Any,
    command: str,
    newest: int,
    *,
    legacy: Mapping[str, Any] | None = None,
    hint: str | None = None,
) -> int:
    """The ``schema_version`` of ``command``'s document, or UsageError (not ours, too new).

    ``legacy``: the fields that marked this document before the envelope (for bench,
    ``{"format": "hotelbot.bench", "version": 1}``); such a document reads as version
    ``legacy["version"]``.
    """
    if legacy is not None and isinstance(document, dict):
        marks = {k: v for k, v in legacy.items() if k != "version"}
        if all(document.get(k) == v for k, v in marks.items()):
            return _not_newer(document.get("version"), int(legacy["version"]), command)
    if not is_enveloped(document) or document["tool"] != tool_name(command):
        raise UsageError(f"not a {tool_name(command)} document", hint)
    return _not_newer(document["schema_version"], newest, command)


def _not_newer(version: Any, newest: int, command: str) -> int:
    if type(version) is not int or version > newest:
        raise UsageError(
            f"{tool_name(command)} document version {version!r} is newer than this hotelbot"
            f" reads ({newest})",
            "upgrade hotelbot or re-run the baseline",
        )
    return version
