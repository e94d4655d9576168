"""rls-check audits the bot's own login when HOTELBOT_APP_DATABASE_URL names it (issue 10)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import create_engine
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

from hotelbot_cli import rls
from hotelbot_cli.settings import libpq_url


def _results(owner_url: URL, check_id: str) -> list[rls.CheckResult]:
    engine = create_engine(owner_url, poolclass=NullPool)
    try:
        report = rls.check(engine, probes=False)
    finally:
        engine.dispose()
    return [r for r in report.results if r.id == check_id]


def _configure_bot(monkeypatch: pytest.MonkeyPatch, db_url: URL, login: str) -> URL:
    """HOTELBOT_APP_DATABASE_URL names ``login`` (password bot-secret); its URL."""
    bot_url = db_url.set(username=login, password="bot-secret")
    monkeypatch.setenv("HOTELBOT_APP_DATABASE_URL", bot_url.render_as_string(hide_password=False))
    return bot_url


@contextmanager
def _login_made_by_hand(
    conn: psycopg.Connection, extra: str | None, cleanup: list[str], **names: str
) -> Iterator[str]:
    """A bot login made with plain SQL as a DBA would (password bot-secret), then ``extra``
    (statements joined by ``"; "``, ``{login}`` and ``names`` filled in); afterwards
    ``cleanup`` (filled in alike) and the login dropped."""
    login = f"hb_bot_{uuid.uuid4().hex[:8]}"
    conn.execute(f"CREATE ROLE {login} LOGIN PASSWORD 'bot-secret' IN ROLE app_user")
    try:
        for statement in (extra or "").format(login=login, **names).split("; "):
            if statement:
                conn.execute(statement)
        yield login
    finally:
        for statement in cleanup:
            conn.execute(statement.format(login=login, **names))
        conn.execute(f"DROP ROLE {login}")


def _audit_login_made_by_hand(
    monkeypatch: pytest.MonkeyPatch,
    db_url: URL,
    extra: str | None,
    cleanup: list[str],
    check_id: str,
    owner_url: URL | None = None,
) -> tuple[str, rls.CheckResult]:
    """:func:`_login_made_by_hand` (``{db}``: this database) configured as the bot, and the
    one result of ``check_id`` that rls-check gives as the owner (``owner_url``: how it
    connects, default ``db_url``); the login's name with it."""
    with (
        psycopg.connect(libpq_url(db_url), autocommit=True) as conn,
        _login_made_by_hand(conn, extra, cleanup, db=str(db_url.database)) as login,
    ):
        _configure_bot(monkeypatch, db_url, login)
        (result,) = _results(owner_url or db_url, check_id)
    return login, result


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (None, None),
        ("ALTER ROLE {login} CREATEROLE", "CREATEROLE"),
        ("ALTER ROLE {login} BYPASSRLS", "BYPASSRLS"),
        ("GRANT SELECT ON hotels TO {login}", "table hotels"),
        ("GRANT SELECT (green_api_token) ON hotels TO {login}", "column hotels.green_api_token"),
        ("CREATE ROLE {login}_extra; GRANT {login}_extra TO {login}", "member of"),
        ("REVOKE app_user FROM {login}", "not granted app_user"),
        # its own TEMP, though 009 revoked PUBLIC's: a temp triggers shadows ours
        ("GRANT TEMPORARY ON DATABASE {db} TO {login}", "database {db} TEMPORARY"),
        # SET session_replication_role = replica would switch off the tenant foreign keys
        (
            "GRANT SET ON PARAMETER session_replication_role TO {login}",
            "parameter session_replication_role SET",
        ),
    ],
    ids=[
        "clean",
        "createrole",
        "bypassrls",
        "table-grant",
        "column-grant",
        "membership",
        "no-app",
        "database-temporary",
        "parameter-set",
    ],
)
def test_bot_login_is_audited(
    db_url: URL, monkeypatch: pytest.MonkeyPatch, extra: str | None, named: str | None
) -> None:
    """A login made with plain SQL as a DBA would; anything beyond app_user fails, named."""
    db = str(db_url.database)
    cleanup = [
        "REVOKE ALL ON hotels FROM {login}",
        "REVOKE ALL (green_api_token) ON hotels FROM {login}",
        "REVOKE ALL ON DATABASE {db} FROM {login}",
        "REVOKE ALL ON PARAMETER session_replication_role FROM {login}",
        "DROP ROLE IF EXISTS {login}_extra",
    ]
    _, result = _audit_login_made_by_hand(monkeypatch, db_url, extra, cleanup, "bot-login")
    if named is None:
        assert result.status == "pass", result.detail
    else:
        assert result.status == "fail" and named.format(db=db) in result.detail, result.detail
        assert result.fix and "create-login" in result.fix
        assert "bot-secret" not in result.detail + result.fix


def test_no_bot_login_configured_means_no_such_check(
    db_url: URL, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HOTELBOT_APP_DATABASE_URL", raising=False)
    assert _results(db_url, "bot-login") == []


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (None, None),
        (
            "CREATE SCHEMA {login}; CREATE TABLE {login}.guests (LIKE public.guests);"
            " GRANT USAGE ON SCHEMA {login} TO {login}",
            "guests in {login}",
        ),
        # a view that keeps RLS (every other check passes) but answers for our table
        (
            "CREATE SCHEMA {login}; CREATE VIEW {login}.messages WITH (security_invoker)"
            " AS SELECT * FROM public.messages; GRANT USAGE ON SCHEMA {login} TO app_user;"
            " GRANT SELECT ON {login}.messages TO app_user;"
            " ALTER ROLE {login} SET search_path = {login}, public",
            "messages in {login}",
        ),
        ("ALTER ROLE {login} SET search_path = nowhere", "no hotels"),
        ('ALTER DATABASE {db} SET search_path = "$user"', "no guests"),
        # every role's setting in this database, naming a quoted mixed-case schema
        (
            'CREATE SCHEMA "Shadow_{login}"; CREATE TABLE "Shadow_{login}".triggers'
            ' (LIKE public.triggers); GRANT USAGE ON SCHEMA "Shadow_{login}" TO app_user;'
            ' ALTER ROLE ALL IN DATABASE {db} SET search_path = "Shadow_{login}", public',
            "triggers in Shadow_{login}",
        ),
        # the login's own setting in this database wins over the database's
        (
            "ALTER DATABASE {db} SET search_path = nowhere;"
            " ALTER ROLE {login} IN DATABASE {db} SET search_path = public",
            None,
        ),
    ],
    ids=[
        "clean",
        "shadowing-user-schema",
        "shadowing-view",
        "role-setting",
        "database-setting",
        "all-roles-quoted-schema",
        "precedence",
    ],
)
def test_the_bots_login_must_find_our_tables(
    db_url: URL, monkeypatch: pytest.MonkeyPatch, extra: str | None, named: str | None
) -> None:
    """The bot's SQL names tables unqualified: its login's search_path (as the server
    would set it at log-in, from the catalog) must lead to the tables rls-check audits."""
    cleanup = [
        "DROP SCHEMA IF EXISTS {login} CASCADE",
        'DROP SCHEMA IF EXISTS "Shadow_{login}" CASCADE',
        "ALTER DATABASE {db} RESET search_path",
        "ALTER ROLE ALL IN DATABASE {db} RESET search_path",
    ]
    # the owner's session pinned to public (a startup option beats a database setting)
    owner = db_url.update_query_dict({"options": "-csearch_path=public"})
    login, result = _audit_login_made_by_hand(
        monkeypatch, db_url, extra, cleanup, "bot-search-path", owner
    )
    if named is None:
        assert result.status == "pass", result.detail
    else:
        assert result.status == "fail" and named.format(login=login) in result.detail
        assert result.fix and "SET search_path = public, pg_temp" in result.fix
        assert "bot-secret" not in result.detail + result.fix


def test_an_install_into_the_owners_own_schema_passes_and_so_does_its_bot(
    create_database: Callable[..., URL], monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL's secure schema usage pattern gives each user a schema of its name, first
    in the default ``"$user", public``: the migrations install there. rls-check's review
    of 007's lookup (whose body names the schema) holds there too, and the login that
    ``create-login`` makes finds the tables there."""
    from hotelbot_cli import migrations
    from hotelbot_cli.db.login import create_login

    url = create_database()
    owner = url.username or "postgres"
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(owner)))
    engine = create_engine(url, poolclass=NullPool)
    login = f"hb_bot_{uuid.uuid4().hex[:8]}"
    try:
        migrations.upgrade(engine)
        with psycopg.connect(libpq_url(url)) as conn:
            assert conn.execute("SELECT to_regclass(%s)", (f"{owner}.guests",)).fetchone() != (
                None,
            )
        made = create_login(engine, login, "bot-secret")
        assert made.created
        bot_url = _configure_bot(monkeypatch, url, login)
        report = rls.check(engine, probes=False)
        failed = [f"{r.id} {r.table}: {r.detail}" for r in report.results if r.status == "fail"]
        assert not failed
        assert {"bot-search-path", "security-definer"} <= {r.id for r in report.results}
        with psycopg.connect(libpq_url(bot_url)) as conn:  # the bot's own view
            row = conn.execute("SELECT 'guests'::regclass::text").fetchone()
        assert row == ("guests",)
    finally:
        engine.dispose()
        with psycopg.connect(libpq_url(url), autocommit=True) as conn:
            conn.execute(f"DROP OWNED BY {login}")
            conn.execute(f"DROP ROLE IF EXISTS {login}")
