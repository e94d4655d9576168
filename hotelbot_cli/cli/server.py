"""``hotelbot server …``: the embedded PostgreSQL used when DATABASE_URL is unset."""

from __future__ import annotations

import typer

from hotelbot_cli import embedded
from hotelbot_cli.cli import _output as out
from hotelbot_cli.cli._common import JsonOption
from hotelbot_cli.errors import raise_if_failed

app = typer.Typer(
    help="The embedded PostgreSQL server (used when DATABASE_URL is unset).", no_args_is_help=True
)


@app.command()
def start() -> None:
    """Start the embedded server (initialising it on first use) and leave it running."""
    embedded.start()
    status = embedded.status()
    out.line(
        f"Embedded PostgreSQL {status.version} running (pid {status.pid}),"
        f" data in {status.data_dir}"
    )


@app.command()
def stop() -> None:
    """Stop the embedded server."""
    if embedded.stop():
        out.line("Embedded PostgreSQL stopped.")
    else:
        out.line("Embedded PostgreSQL was not running.")


@app.command()
def status(as_json: JsonOption = False) -> None:
    """Show whether the embedded server is initialised and running (exit 1 when not running)."""
    current = embedded.status()
    if as_json:
        out.emit_json(current, "server status")
    else:
        out.table(
            None,
            ["data dir", "initialised", "running", "pid", "version"],
            [
                (
                    current.data_dir,
                    current.initialized,
                    current.running,
                    current.pid,
                    current.version,
                )
            ],
        )
    raise_if_failed(current)


@app.command()
def url() -> None:
    """Print the connection URL of the running embedded server (exit 1 when not running)."""
    out.line(embedded.running_url())
