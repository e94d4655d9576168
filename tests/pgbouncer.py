"""A real PgBouncer (transaction pooling) in front of the test server, started per session.

Skipped with a reason only when the ``pgbouncer`` binary is absent (``.ci/run`` installs
it, so CI always runs these tests). As root it runs as the owner of the server's socket
directory, since PgBouncer refuses to run as root.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

#: Logins PgBouncer accepts (auth_type trust needs them listed): the test superuser and the
#: bot login the PgBouncer tests create.
BOT_LOGIN = "hb_pgb_bot"
BOT_PASSWORD = "pgb-bot-secret"  # a throwaway test login


@dataclass(frozen=True)
class PgBouncer:
    """A running PgBouncer: ``url(database, user, password)`` points a client through it."""

    port: int
    directory: Path

    def url(
        self, server: URL, database: str, user: str | None = None, password: str | None = None
    ) -> URL:
        return URL.create(
            "postgresql+psycopg",
            username=user or server.username,
            password=password if user else server.password,
            host="127.0.0.1",
            port=self.port,
            database=database,
        )

    def log(self) -> str:
        path = self.directory / "pgbouncer.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _server_address(server: URL) -> tuple[str, int]:
    host = server.query.get("host") or server.host or "/tmp"
    if isinstance(host, tuple):
        host = host[0]
    port = server.query.get("port") or server.port or 5432
    if isinstance(port, tuple):
        port = port[0]
    return str(host), int(port)


def _config(directory: Path, server: URL, port: int) -> str:
    host, server_port = _server_address(server)
    return f"""[databases]
* = host={host} port={server_port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {directory}/users.txt
pool_mode = transaction
default_pool_size = 2
max_client_conn = 200
server_reset_query = DISCARD ALL
ignore_startup_parameters = extra_float_digits,options
logfile = {directory}/pgbouncer.log
pidfile = {directory}/pgbouncer.pid
admin_users = {server.username}
"""


@pytest.fixture(scope="session")
def pgbouncer(server_url: URL) -> Iterator[PgBouncer]:
    """PgBouncer in transaction mode on 127.0.0.1 in front of ``server_url``."""
    binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    if not os.path.exists(binary):
        pytest.skip("pgbouncer is not installed (apt-get install pgbouncer; .ci/run does)")
    directory = Path(tempfile.mkdtemp(prefix="hb-pgbouncer-"))
    port = _free_port()
    users = (
        f'"{server_url.username}" "{server_url.password or ""}"\n"{BOT_LOGIN}" "{BOT_PASSWORD}"\n'
    )
    (directory / "users.txt").write_text(users)
    (directory / "pgbouncer.ini").write_text(_config(directory, server_url, port))
    command = [binary, "-q", str(directory / "pgbouncer.ini")]
    if os.geteuid() == 0:
        host, _ = _server_address(server_url)
        owner = pwd.getpwuid(os.stat(host).st_uid)
        if owner.pw_uid == 0:
            pytest.skip("pgbouncer refuses to run as root and the server's socket is root's")
        for path in (directory, *directory.iterdir()):
            os.chown(path, owner.pw_uid, owner.pw_gid)
        command[1:1] = ["-u", owner.pw_name]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    bouncer = PgBouncer(port, directory)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                out = process.stdout.read().decode() if process.stdout else ""
                raise RuntimeError(f"pgbouncer did not start: {out}{bouncer.log()}") from None
            time.sleep(0.05)
    yield bouncer
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
    shutil.rmtree(directory, ignore_errors=True)
