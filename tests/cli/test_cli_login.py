"""`hotelbot db create-login`: a login that can do nothing but act as app_user."""

from __future__ import annotations

import os
import stat
import uuid
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

from hotelbot_cli.db.engine import make_app_engine
from hotelbot_cli.db.login import create_login
from hotelbot_cli.errors import UsageError
from hotelbot_cli.settings import Settings, libpq_url


def _drop(db_url: URL, name: str) -> None:
    with psycopg.connect(libpq_url(db_url), autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (name,)
        )
        conn.execute(f"DROP ROLE IF EXISTS {name}")


def test_create_login_prints_a_redacted_url_and_writes_a_private_env_file(
    cli, db_url: URL, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"hb_login_{uuid.uuid4().hex[:6]}"
    env_file = tmp_path / "bot.env"
    monkeypatch.setenv("HOTELBOT_APP_PASSWORD", "s3cret@pass word")
    try:
        code, out, err = cli("db", "create-login", name, "--env-file", str(env_file), url=db_url)
        assert code == 0, err
        assert "s3cret" not in out + err
        assert f"postgresql://{name}:***@" in out and f"Created login {name}" in err
        assert stat.S_IMODE(os.stat(env_file).st_mode) == 0o600
        values = dict(line.split("=", 1) for line in env_file.read_text().splitlines())
        assert len(bytes.fromhex(values["HOTELBOT_TENANT_KEY"])) == 32
        # the login works through the library, acting as app_user and nothing else
        engine = make_app_engine(values["HOTELBOT_APP_DATABASE_URL"], Settings.from_env({}))
        with engine.connect() as conn:
            roles = conn.execute(
                text(
                    "SELECT array_agg(r.rolname ORDER BY r.rolname) FROM pg_roles r"
                    " WHERE pg_has_role(session_user, r.oid, 'MEMBER')"
                )
            ).scalar()
        engine.dispose()
        assert roles == sorted(["app_user", name])
        # re-running re-passwords and takes away anything an admin added
        with psycopg.connect(libpq_url(db_url), autocommit=True) as conn:
            conn.execute(f"ALTER ROLE {name} CREATEDB")
            conn.execute(f"GRANT pg_read_all_data TO {name}")
        code, out, err = cli("db", "create-login", name, url=db_url)
        assert code == 0 and f"Updated login {name}" in err
        with psycopg.connect(libpq_url(db_url)) as conn:
            row = conn.execute(
                "SELECT rolcreatedb,"
                " (SELECT count(*) FROM pg_auth_members m WHERE m.member = r.oid)"
                " FROM pg_roles r WHERE rolname = %s",
                (name,),
            ).fetchone()
        assert row == (False, 1)
    finally:
        _drop(db_url, name)


def test_create_login_refuses_bad_names_and_empty_passwords(db_url: URL) -> None:
    from sqlalchemy import create_engine

    engine = create_engine(db_url)
    with pytest.raises(UsageError, match="identifier"):
        create_login(engine, "Robert'); DROP", "pw")
    with pytest.raises(UsageError, match="empty"):
        create_login(engine, "hb_ok", "")
    engine.dispose()


def test_create_login_prompts_without_echo(cli, db_url: URL, monkeypatch) -> None:
    name = f"hb_login_{uuid.uuid4().hex[:6]}"
    monkeypatch.delenv("HOTELBOT_APP_PASSWORD", raising=False)
    import typer

    asked: list[dict] = []

    def prompt(text: str, **kwargs: object) -> str:
        asked.append(kwargs)
        return "typed-secret"

    monkeypatch.setattr(typer, "prompt", prompt)
    try:
        code, out, err = cli("db", "create-login", name, url=db_url)
        assert code == 0, err
        assert asked and asked[0]["hide_input"] is True
        assert "typed-secret" not in out + err
    finally:
        _drop(db_url, name)


def test_the_password_never_travels_or_logs_in_clear(
    cli, db_url: URL, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server's statement log, our SQL log and DEBUG echo see a SCRAM verifier, never it."""
    name = f"hb_login_{uuid.uuid4().hex[:6]}"
    secret = f"Zq9-{uuid.uuid4().hex[:8]}"
    with psycopg.connect(libpq_url(db_url), autocommit=True) as conn:
        data_dir = conn.execute("SHOW data_directory").fetchone()[0]
        conn.execute(f"ALTER DATABASE \"{db_url.database}\" SET log_statement = 'all'")
    server_log = Path(data_dir) / "log"
    monkeypatch.setenv("HOTELBOT_APP_PASSWORD", secret)
    monkeypatch.setenv("DEBUG", "1")
    sql_log = tmp_path / "sql.log"
    try:
        code, out, err = cli(
            "--log-sql", "--log-file", str(sql_log), "db", "create-login", name, url=db_url
        )
        assert code == 0, err
        logged = out + err + sql_log.read_text()
        assert "ROLE" in sql_log.read_text() and secret not in logged
        if server_log.is_file():  # the tests' embedded server; another server keeps its own log
            text_ = server_log.read_text(errors="replace")
            assert f'CREATE ROLE "{name}" LOGIN' in text_ and "PASSWORD 'SCRAM-SHA-256$" in text_
            assert secret not in text_
        engine = make_app_engine(  # and the login works with the password
            db_url.set(username=name, password=secret), Settings.from_env({})
        )
        with engine.connect() as conn:
            assert conn.execute(text("SELECT current_user")).scalar() == name
        engine.dispose()
    finally:
        _drop(db_url, name)


def test_create_login_pins_the_bots_search_path_to_the_installed_schema(db_url: URL) -> None:
    """The bot names tables unqualified: a schema named after its login (PostgreSQL's
    secure usage pattern, first in the default ``"$user", public``) must not shadow ours."""
    name = f"hb_login_{uuid.uuid4().hex[:6]}"
    owner = libpq_url(db_url)
    with psycopg.connect(owner, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
        conn.execute(f"CREATE TABLE {name}.guests (LIKE public.guests)")
        conn.execute(f"CREATE ROLE {name} LOGIN PASSWORD 'pw' IN ROLE app_user")
        conn.execute(f"GRANT USAGE ON SCHEMA {name} TO {name}")
        conn.execute(f"GRANT SELECT ON {name}.guests TO {name}")
        ours = conn.execute("SELECT 'public.guests'::regclass::oid").fetchone()
    bot = libpq_url(db_url.set(username=name, password="pw"))
    try:
        with psycopg.connect(bot) as conn:  # made by hand: the shadow wins
            assert conn.execute("SELECT 'guests'::regclass::oid").fetchone() != ours
        engine = create_engine(db_url, poolclass=NullPool)
        try:
            create_login(engine, name, "pw")
        finally:
            engine.dispose()
        with psycopg.connect(bot) as conn:
            assert conn.execute("SELECT 'guests'::regclass::oid").fetchone() == ours
            assert conn.execute("SHOW search_path").fetchone() == ("public, pg_temp",)
    finally:
        with psycopg.connect(owner, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {name} CASCADE")
        _drop(db_url, name)
