"""``hotelbot db stats``: tables, --json against its schema, --watch with --count."""

from __future__ import annotations

import json
from importlib import resources

import jsonschema
from sqlalchemy.engine import URL


def test_stats_json_validates(cli, db_url: URL) -> None:
    code, out, _ = cli("db", "stats", "--json", url=db_url)
    assert code == 0
    schema = json.loads(
        resources.files("hotelbot_cli.observability").joinpath("stats.schema.json").read_text()
    )
    data = json.loads(out)
    jsonschema.validate(data, schema)
    assert data["schema_version"] == 1 and any(t["name"] == "hotels" for t in data["tables"])


def test_stats_tables_and_watch(cli, db_url: URL) -> None:
    code, out, _ = cli("db", "stats", url=db_url)
    assert code == 0
    for title in ("Connections", "Tables", "Indexes", "Health", "pg_stat_statements"):
        assert title in out
    code, out, _ = cli("db", "stats", "--watch", "0.2", "--count", "2", url=db_url)
    assert code == 0 and "Tables" in out
    code, _, err = cli("db", "stats", "--watch", "1", "--json", url=db_url)
    assert code == 2 and "--watch" in err
