"""Every --json output of these commands validates against its shipped JSON Schema."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import jsonschema
from sqlalchemy import create_engine
from sqlalchemy.engine import URL

from hotelbot_cli.bench import report_json
from hotelbot_cli.db.lookup import hotel_id_for_whatsapp
from tests.performance.conftest import make_dataset


def _schema(name: str) -> dict:
    text = resources.files("hotelbot_cli.cli").joinpath("schemas", name).read_text()
    schema = json.loads(text)
    jsonschema.Draft202012Validator.check_schema(schema)
    return schema


SMALL = ["--hotels", "6", "--guests-per-hotel", "5", "--reference-time", "2026-01-01T00:00:00Z"]


def test_seed_json_and_the_numbers_to_try(cli, db_url: URL) -> None:
    code, out, err = cli("seed", *SMALL, "--json", url=db_url)
    assert code == 0, err
    doc = json.loads(out)
    jsonschema.validate(doc, _schema("seed.schema.json"))
    assert doc["try"], "at least one active hotel to try"
    engine = create_engine(db_url)
    with engine.connect() as conn:  # each number really reaches an active hotel
        assert all(hotel_id_for_whatsapp(conn, n) is not None for n in doc["try"])
    engine.dispose()
    code, out, _ = cli("seed", *SMALL, "--dry-run", "--json", url=db_url)
    assert code == 0
    jsonschema.validate(json.loads(out), _schema("seed.schema.json"))


def test_seed_summary_names_numbers_to_try(cli, db_url: URL) -> None:
    code, out, err = cli("seed", *SMALL, url=db_url)
    assert code == 0, err
    assert "active seeded hotels to try: +" in out


def test_server_status_json(cli, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("HOTELBOT_DATA_DIR", str(tmp_path / "pgdata"))
    code, out, _ = cli("server", "status", "--json")
    assert code == 1  # not running
    jsonschema.validate(json.loads(out), _schema("server-status.schema.json"))


def test_bench_json_with_comparison_and_thresholds(cli, db_url: URL, tmp_path: Path) -> None:
    make_dataset(db_url, hotels=2, guests=20, messages=3)
    base = tmp_path / "base.json"
    fast = ["--iterations", "50", "--no-reference", "--no-isolation", "--no-explain"]
    code, _, err = cli("bench", *fast, "--output", str(base), url=db_url)
    assert code == 0, err
    code, out, err = cli(
        "bench", *fast, "--json", "--compare", str(base), "--fail-if", "*.errors>5", url=db_url
    )
    assert code == 0, err
    doc = json.loads(out)
    assert doc["comparison"] and doc["thresholds"]
    jsonschema.validate(doc, report_json.schema())
