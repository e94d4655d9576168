"""How rls-check reads a search_path value, as the server does for a login."""

from __future__ import annotations

import pytest

from hotelbot_cli.rls.login import search_path_schemas


@pytest.mark.parametrize(
    ("value", "schemas"),
    [
        ('"$user", public', ["bot", "public"]),
        ("$user,public", ["bot", "public"]),
        ("Public, PG_TEMP", ["public", "pg_temp"]),
        ('"My Schema" , x', ["My Schema", "x"]),
        ('"a""b",c', ['a"b', "c"]),
        ('""', [""]),
        ("", []),
        ("  one  ", ["one"]),
    ],
)
def test_search_path_values_are_read_as_the_server_reads_them(
    value: str, schemas: list[str]
) -> None:
    assert search_path_schemas(value, "bot") == schemas
