"""Keep secrets and personal data out of logs: tokens, passwords, phone numbers, messages.

Three layers, each enough on its own for its path:
- SQL text: every quoted literal becomes ``'?'`` (raw SQL may inline values);
- parameters: a value bound to a sensitive column (found from the parameter's name or
  from the SQL around its placeholder) is replaced; phone numbers anywhere are masked;
- error text: PostgreSQL's ``Key (...)=(...)`` and ``Failing row contains (...)`` values
  are dropped, known secret values and phone numbers are masked.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from hotelbot_cli.settings import redact_text

REDACTED = "***"

#: Columns (or parameter names) whose values are never shown.
SECRET_COLUMNS = frozenset(
    {"green_api_token", "password", "passwd", "secret", "api_key", "token", "content", "title"}
)
#: Fragments that make any column or parameter name secret (``my_token``, ``db_password``…).
SECRET_FRAGMENTS = ("token", "password", "passwd", "secret", "api_key")
#: Columns holding phone numbers: shown masked as ``+7******4567``.
PHONE_COLUMNS = frozenset({"phone", "whatsapp_number", "phone_number", "guest_phone"})

_PHONE_RE = re.compile(r"\+[1-9]\d{6,14}\b|\b[1-9]\d{9,14}(?=@(?:c\.us|s\.whatsapp\.net)\b)")
_LITERAL_RE = re.compile(r"(?:[EeBbXxUu]&?)?'(?:[^']|'')*'|\$(\w*)\$.*?\$\1\$", re.DOTALL)
_KEY_DETAIL_RE = re.compile(r"(Key \([^)]*\)=\()(.*?)(\)( already exists| is not present|$))")
_FAILING_ROW_RE = re.compile(r"(Failing row contains \().*(\))", re.DOTALL)
_PASSWORD_KV_RE = re.compile(r"(password\s*=\s*)('[^']*'|\S+)", re.IGNORECASE)
_SUFFIX_RE = re.compile(r"(?:_{1,2}\d+)+$")
_NAMED_RE = re.compile(r"%\((\w+)\)s")
_PLACEHOLDER_RE = re.compile(r"%\((\w+)\)s|%s|\$(\d+)|(?<![:\w]):(\w+)")
_COMPARE_RE = re.compile(
    r"([\w\"]+)\s*(?:=|<>|!=|(?:NOT\s+)?I?LIKE|IN\s*\(|=\s*ANY\s*\()\s*\(?\s*"
    r"(%\(\w+\)s|%s|\$\d+|(?<![:\w]):\w+)",
    re.IGNORECASE,
)
_INSERT_RE = re.compile(
    r"INSERT\s+INTO\s+[\w.\"]+\s*\(([^)]*)\)\s*VALUES\s*(.*)", re.IGNORECASE | re.DOTALL
)


def mask_phone(phone: str) -> str:
    """``+79161234567`` → ``+7******4567``."""
    return phone[:2] + "*" * max(len(phone) - 6, 0) + phone[-4:]


def mask_phones(text: str) -> str:
    """Every phone-number-looking run in ``text`` masked."""
    return _PHONE_RE.sub(lambda m: mask_phone(m.group(0)), text)


def is_secret_name(name: str) -> bool:
    base = _SUFFIX_RE.sub("", name.strip('"').lower().rsplit(".", 1)[-1])
    return base in SECRET_COLUMNS or any(f in base for f in SECRET_FRAGMENTS)


def is_phone_name(name: str) -> bool:
    base = _SUFFIX_RE.sub("", name.strip('"').lower().rsplit(".", 1)[-1])
    return base in PHONE_COLUMNS or base.endswith("_phone")


def scrub_sql(sql: str) -> str:
    """SQL text with every string literal replaced by ``'?'`` and phones masked."""
    return mask_phones(_LITERAL_RE.sub("'?'", sql))


def _placeholder_key(match: re.Match[str], position: int) -> str | int:
    if match.group(1):
        return match.group(1)
    if match.group(2):
        return int(match.group(2)) - 1
    if match.group(3):
        return match.group(3)
    return position


@lru_cache(maxsize=2048)
def param_columns(sql: str) -> dict[str | int, str]:
    """Map each placeholder (name, or position) to the column it is bound to, when the SQL says."""
    found: dict[str | int, str] = {}
    positions: dict[int, int] = {}  # span start of a positional placeholder → its index
    index = 0
    for match in _PLACEHOLDER_RE.finditer(sql):
        if match.group(0) == "%s":
            positions[match.start()] = index
            index += 1
    for match in _COMPARE_RE.finditer(sql):
        ph_start = match.start(2)
        inner = _PLACEHOLDER_RE.match(sql, ph_start)
        if inner is None:  # pragma: no cover - the two patterns agree on placeholders
            continue
        found[_placeholder_key(inner, positions.get(ph_start, -1))] = match.group(1)
    insert = _INSERT_RE.search(sql)
    if insert:
        columns = [c.strip() for c in insert.group(1).split(",")]
        values_start = insert.start(2)
        depth, slot = 0, 0
        i = values_start
        for match in _PLACEHOLDER_RE.finditer(sql, values_start):
            # count commas/parens between the previous point and this placeholder
            segment = sql[i : match.start()]
            for ch in segment:
                if ch == "(":
                    depth += 1
                    if depth == 1:
                        slot = 0
                elif ch == ")":
                    depth -= 1
                elif ch == "," and depth == 1:
                    slot += 1
            i = match.start()
            if depth == 1 and slot < len(columns):
                key = _placeholder_key(match, positions.get(match.start(), -1))
                found.setdefault(key, columns[slot])
    return found


#: Elements of a list (array) parameter shown in a log line.
_LIST_LIMIT = 20


def _mask_value(value: Any, column: str | None) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    if column and is_secret_name(column):
        return REDACTED
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(value)} bytes>"
    if isinstance(value, str):
        if column and is_phone_name(column):
            return mask_phone(value)
        return mask_phones(value)
    if isinstance(value, Mapping):
        return {str(k): _mask_value(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = list(value)
        masked = [_mask_value(v, column) for v in items[:_LIST_LIMIT]]
        if len(items) > _LIST_LIMIT:  # an array parameter: enough to recognise, not a dump
            masked.append(f"... {len(items) - _LIST_LIMIT} more")
        return masked
    return mask_phones(str(value))


def _column(name: str, columns: Mapping[str | int, str]) -> str:
    """The name that decides how a named parameter is masked: its own, or its column's."""
    column = columns.get(name)
    if column and not (is_secret_name(name) or is_phone_name(name)):
        return column
    return name


def mask_params(sql: str, params: Any, *, limit: int = 20) -> Any:
    """``params`` as they may be logged: JSON-ready, secrets replaced, phones masked.

    ``executemany`` parameter lists are cut to ``limit`` rows (the count is kept).
    """
    if params is None:
        return None
    columns = param_columns(sql)
    if isinstance(params, Mapping):
        return {str(k): _mask_value(v, _column(str(k), columns)) for k, v in params.items()}
    if isinstance(params, Sequence) and not isinstance(params, str | bytes):
        if params and all(isinstance(p, Mapping | list | tuple) for p in params):
            rows = [mask_params(sql, p) for p in list(params)[:limit]]
            if len(params) > limit:
                rows.append(f"... {len(params) - limit} more rows")
            return rows
        return [_mask_value(v, columns.get(i)) for i, v in enumerate(params)]
    return _mask_value(params, None)


def secret_values(sql: str, params: Any) -> list[str]:
    """The string values in ``params`` bound to secret columns (to scrub them from errors)."""
    if params is None:
        return []
    columns = param_columns(sql)
    out: list[str] = []

    def visit(p: Any) -> None:
        if isinstance(p, Mapping):
            for k, v in p.items():
                if isinstance(v, str) and v and is_secret_name(_column(str(k), columns)):
                    out.append(v)
        elif isinstance(p, Sequence) and not isinstance(p, str | bytes):
            if p and all(isinstance(x, Mapping | list | tuple) for x in p):
                for x in p:
                    visit(x)
            else:
                for i, v in enumerate(p):
                    col = columns.get(i)
                    if isinstance(v, str) and v and col and is_secret_name(col):
                        out.append(v)

    visit(params)
    return out


def mask_text(text: str, secrets: Iterable[str] = ()) -> str:
    """An error message as it may be logged: key values, secrets, passwords and phones hidden."""
    for secret in sorted(set(secrets), key=len, reverse=True):
        if len(secret) >= 3:
            text = text.replace(secret, REDACTED)
    text = _KEY_DETAIL_RE.sub(lambda m: m.group(1) + REDACTED + m.group(3), text)
    text = _FAILING_ROW_RE.sub(lambda m: m.group(1) + REDACTED + m.group(2), text)
    text = redact_text(text)
    text = _PASSWORD_KV_RE.sub(r"\1***", text)
    return mask_phones(text)
