"""``hotelbot seed`` through the CLI: summary, refusal, truncate confirmation, dry run, JSON."""

from __future__ import annotations

import json

from sqlalchemy.engine import URL

SMALL = ["--hotels", "2", "--guests-per-hotel", "5", "--reference-time", "2026-01-01T00:00:00Z"]


def test_seed_then_refuse_then_truncate(cli, db_url: URL) -> None:
    code, out, _err = cli("seed", *SMALL, url=db_url)
    assert code == 0
    assert "hotels" in out and "messages" in out and "rows/s" in out
    code, _out, err = cli("seed", *SMALL, url=db_url)
    assert code == 2 and "already holds 2 hotel" in err and "--truncate" in err
    code, _out, err = cli("seed", *SMALL, "--truncate", url=db_url)
    assert code == 2 and "--yes" in err  # not a TTY: never asks, never deletes
    code, out, _err = cli("seed", *SMALL, "--truncate", "--yes", "--json", url=db_url)
    report = json.loads(out)
    assert code == 0 and report["rows"]["hotels"] == 2 and report["hotels_before"] == 2
    code, out, _err = cli("seed", *SMALL, "--append", "--quiet", url=db_url)
    assert code == 0


def test_dry_run_and_usage_errors(cli, db_url: URL) -> None:
    code, out, _err = cli("seed", "--dry-run", "--hotels", "50", url=db_url)
    assert code == 0 and "Would write" in out and "100,000" in out
    code, _out, err = cli("seed", "--append", "--truncate", url=db_url)
    assert code == 2 and "exclude" in err
    code, _out, err = cli("seed", "--reference-time", "yesterday", url=db_url)
    assert code == 2 and "ISO" in err
    code, _out, err = cli("seed", "--hotels", "0", url=db_url)
    assert code == 2 and "--hotels" in err


def test_refuses_a_database_not_at_head(cli, empty_db_url: URL) -> None:
    code, _out, err = cli("seed", "--hotels", "1", url=empty_db_url)
    assert code == 1 and "hotelbot db upgrade" in err


def test_progress_display_renders_rows_and_rates(capsys) -> None:
    from hotelbot_cli.cli import _output as out
    from hotelbot_cli.cli.seed import _ProgressDisplay

    with _ProgressDisplay() as display:
        display.update("messages", 10, 100)
        display.update("messages", 100, 100)
        display.update("vacuum + analyze", 1, 6)
    assert set(display.tasks) == {"messages", "vacuum + analyze"}
    assert out.err_console is display.progress.console
