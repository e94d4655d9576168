"""No password is shown by any command, in any spelling of a connection string (issue 10).

Errors, tables, ``--json``, JUnit and every log path (``--log-sql``, HOTELBOT_ENV=development,
DEBUG=1, ``--debug`` tracebacks), for URL user info (raw ``@`` included), ``?password=``,
keyword DSNs, malformed input, and PGPASSWORD. The server is the tests' own (trust
authentication, so a password in the URL is accepted and ignored).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy.engine import URL

SECRET = "Zq9-s3cr3t"


def _shown(*parts: str) -> str:
    return "\n".join(parts)


@pytest.mark.parametrize(
    ("raw", "code", "host"),
    [
        (f"postgresql://u:p@{SECRET}@127.0.0.1:1/x", 3, "127.0.0.1"),
        (f"postgresql://u:{quote(SECRET + '@x', safe='')}@127.0.0.1:1/x", 3, "127.0.0.1"),
        (f"postgresql://u:{SECRET}/x?y@127.0.0.1:1/x", 3, "127.0.0.1"),
        (f"postgresql://u@127.0.0.1:1/x?password={SECRET}", 3, "127.0.0.1"),
        (f"postgresql://u:{SECRET}@127.0.0.1:port/x", 2, "127.0.0.1"),
        (f"postgresql://u:{SECRET} x@127.0.0.1:port/x", 2, "127.0.0.1"),
        (f"host=127.0.0.1 port=1 password={SECRET}", 2, "127.0.0.1"),
        (f"host=127.0.0.1 password = '{SECRET} with space' port=1", 2, "127.0.0.1"),
        (f"mysql://u:{SECRET}@127.0.0.1/x", 2, "mysql"),
    ],
)
def test_connection_errors_never_show_the_password(
    cli, monkeypatch: pytest.MonkeyPatch, raw: str, code: int, host: str
) -> None:
    monkeypatch.setenv("PGPASSWORD", SECRET)
    for args in (("db", "current"), ("--debug", "--log-sql", "db", "current", "--json")):
        got, out, err = cli(*args, url=raw)
        assert got == code, err
        assert SECRET not in _shown(out, err) and host in err
        assert err.startswith("error: ") or "Traceback" in err


def test_a_raw_at_sign_in_the_password_reaches_the_right_host(cli) -> None:
    code, _, err = cli("db", "current", url=f"postgresql://u:p@{SECRET}@127.0.0.1:1/x")
    assert code == 3 and 'server at "127.0.0.1", port 1 failed' in err, err


def test_tables_json_junit_and_logs_hide_every_password(
    cli, db_url: URL, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = (  # a raw "@" in the user info's password, and ?password=
        db_url.set(password="PLACEHOLDER")
        .update_query_dict({"password": SECRET})
        .render_as_string(hide_password=False)
        .replace("PLACEHOLDER", f"p@{SECRET}")
    )
    monkeypatch.setenv("PGPASSWORD", SECRET)
    monkeypatch.setenv("DEBUG", "1")
    monkeypatch.setenv("HOTELBOT_ENV", "development")
    junit = tmp_path / "rls.xml"
    log = tmp_path / "sql.log"
    code, out, err = cli(
        "--log-sql",
        "--log-file",
        str(log),
        "rls-check",
        "-v",
        "--no-probes",
        "--junit-xml",
        str(junit),
        url=url,
    )
    assert code == 0, err
    assert "***@" in err  # the header (stderr) names the database, password hidden
    code, js, err2 = cli("--log-sql", "rls-check", "--no-probes", "--json", url=url)
    assert code == 0 and '"database"' in js
    code, current, err3 = cli("--log-sql", "db", "current", "--json", url=url)
    assert code == 0
    everything = _shown(out, err, js, err2, current, err3, junit.read_text(), log.read_text())
    assert "SELECT" in everything  # the logs did run
    assert SECRET not in everything


def test_pgbench_gets_the_password_in_its_environment_not_its_command_line(
    db_url: URL, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A command line is readable by every user of the machine (ps); the environment is not."""
    from sqlalchemy import create_engine

    from hotelbot_cli.bench import reference

    seen = tmp_path / "seen"
    fake = tmp_path / "pgbench"
    fake.write_text(
        "#!/bin/sh\n"
        f'echo "argv: $*" >> {seen}\n'
        f'echo "env: $PGPASSWORD" >> {seen}\n'
        'echo "latency average = 1.0 ms"\n'
        'echo "tps = 1000.0 (without initial connection time)"\n'
    )
    fake.chmod(0o755)
    monkeypatch.setattr(reference, "find_pgbench", lambda: fake)
    engine = create_engine(db_url.set(password=SECRET))
    try:
        results = reference.measure(engine, [1], 1)
    finally:
        engine.dispose()
    assert results[0].skipped is None
    lines = seen.read_text().splitlines()
    assert [line for line in lines if line.startswith("argv:")] and all(
        SECRET not in line for line in lines if line.startswith("argv:")
    )
    assert f"env: {SECRET}" in lines


def test_a_keyword_dsn_is_refused_readably(cli) -> None:
    code, _, err = cli("db", "current", url=f"host=nohost password='{SECRET} x'")
    assert code == 2 and SECRET not in err
    assert "'host=nohost password=***' is not a URL" in err  # the quote survives redaction
    assert "(expected postgresql://user:password@host:5432/dbname)" in err  # the hint as written
