"""What a SQL statement does, and to which table, read from its text alone.

The ``operation`` and ``table`` fields of every database log line. Cheap enough for every
logged statement: a few regular expressions, cached per statement text.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple


class Statement(NamedTuple):
    """A statement's operation (SELECT, INSERT, …, DDL, OTHER) and main table, if any."""

    operation: str
    table: str | None


_DDL = frozenset({"CREATE", "ALTER", "DROP", "TRUNCATE", "COMMENT", "GRANT", "REVOKE", "REINDEX"})
_TABLE_RES = {
    "SELECT": re.compile(r"\bFROM\s+(?:ONLY\s+)?([\w.\"]+)", re.IGNORECASE),
    "INSERT": re.compile(r"\bINTO\s+([\w.\"]+)", re.IGNORECASE),
    "UPDATE": re.compile(r"^\s*UPDATE\s+(?:ONLY\s+)?([\w.\"]+)", re.IGNORECASE),
    "DELETE": re.compile(r"\bFROM\s+(?:ONLY\s+)?([\w.\"]+)", re.IGNORECASE),
    "COPY": re.compile(r"^\s*COPY\s+([\w.\"]+)", re.IGNORECASE),
    "DDL": re.compile(
        r"\b(?:TABLE|INDEX|VIEW|SEQUENCE|POLICY\s+\S+\s+ON)\s+(?:IF\s+(?:NOT\s+)?EXISTS\s+)?"
        r"(?:CONCURRENTLY\s+)?([\w.\"]+)",
        re.IGNORECASE,
    ),
}
_WITH_MAIN_RE = re.compile(r"\)\s*(SELECT|INSERT|UPDATE|DELETE)\b(?![\s\S]*\bAS\s*\()", re.I)


@lru_cache(maxsize=4096)
def classify(sql: str) -> Statement:
    """What a statement does and to which table, e.g. ``Statement("SELECT", "hotels")``."""
    text = re.sub(r"^(?:\s|--[^\n]*\n|/\*.*?\*/)+", "", sql, flags=re.DOTALL)
    word = text.split(None, 1)[0].upper().rstrip(";") if text.strip() else ""
    if word == "WITH":
        main = _WITH_MAIN_RE.search(text)
        word = main.group(1).upper() if main else "SELECT"
        text = text[main.start(1) :] if main else text
    operation = "DDL" if word in _DDL else (word or "OTHER")
    pattern = _TABLE_RES.get(operation)
    table = None
    if pattern:
        found = pattern.search(text)
        if found:
            table = found.group(1).replace('"', "").rsplit(".", 1)[-1]
    return Statement(operation, table)
