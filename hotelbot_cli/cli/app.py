"""The ``hotelbot`` command: wires the command groups and maps errors to exit codes in one place."""

from __future__ import annotations

import logging
import os
import sys
from typing import Annotated

import typer

from hotelbot_cli import __version__
from hotelbot_cli.cli import bench, db, examples, rls, seed, server
from hotelbot_cli.errors import EXIT_FAILED, EXIT_USAGE, HotelbotError

app = typer.Typer(
    name="hotelbot",
    help="Database tooling for the multi-tenant hotel-guest WhatsApp bot.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish, pwsh)
    # Plain click help: rich's help renderer costs more start-up than everything else here.
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(db.app, name="db")
app.add_typer(server.app, name="server")
for _group in app.registered_groups:  # the groups' modules keep their own Typer() calls
    if _group.typer_instance is not None:
        _group.typer_instance.rich_markup_mode = None
app.command("seed")(seed.seed_command)
app.command("rls-check")(rls.rls_check)
app.command("bench")(bench.bench)
examples.attach(app)


#: click's ClickException, whether Typer vendors click or depends on it
#: (typer.BadParameter derives from it either way).
_ClickException: type[Exception] = next(
    c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"hotelbot {__version__}")
        raise typer.Exit()


_HELP = frozenset({"-h", "--help"})
_argv: list[str] = []  # the arguments of the current run()


def _help_requested(argv: list[str]) -> bool:
    """True when -h/--help comes before any ``--`` (the command will only print its help)."""
    options = argv[: argv.index("--")] if "--" in argv else argv
    return bool(_HELP.intersection(options))


@app.callback()
def root(  # noqa: PLR0917 - one parameter per global option
    ctx: typer.Context,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks of errors (also HOTELBOT_DEBUG=1).")
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
    log_sql: Annotated[
        bool,
        typer.Option(
            "--log-sql", help="Log every SQL statement at DEBUG (also HOTELBOT_ENV=development)."
        ),
    ] = False,
    log_file: Annotated[
        str | None,
        typer.Option(
            "--log-file",
            metavar="PATH",
            help="Append database logs (JSON lines) to PATH instead of stderr.",
            envvar="HOTELBOT_LOG_FILE",
        ),
    ] = None,
    log_format: Annotated[
        str,
        typer.Option(
            "--log-format",
            metavar="[auto|json|text]",
            help="Database log format: text on a terminal, JSON otherwise (auto).",
            envvar="HOTELBOT_LOG_FORMAT",
        ),
    ] = "auto",
    correlation_id: Annotated[
        str | None,
        typer.Option(
            "--correlation-id",
            metavar="ID",
            help="Correlation id stamped on every log line of this run (default: a new one).",
        ),
    ] = None,
) -> None:
    """Database tooling for the multi-tenant hotel-guest WhatsApp bot.

    DATABASE_URL selects the server; unset, an embedded PostgreSQL is started and reused.
    """
    if ctx.resilient_parsing or _help_requested(_argv):
        return  # help or shell completion: nothing will touch the database
    from hotelbot_cli.observability import log_output, set_correlation_id

    log_output.configure(log_sql=log_sql or None, log_file=log_file, log_format=log_format)
    set_correlation_id(correlation_id)


def _debug_requested(argv: list[str]) -> bool:
    from hotelbot_cli.settings import debug_requested

    return "--debug" in argv or debug_requested()


def _translate(exc: BaseException) -> HotelbotError | None:
    """Map database exceptions only when the database layers were imported at all."""
    if "sqlalchemy" not in sys.modules and "psycopg" not in sys.modules:
        return None
    from hotelbot_cli.db.errors import translate

    return translate(exc)


def _ignore_libpq_env_for_embedded() -> None:
    """Without DATABASE_URL the embedded server is used: PG* variables are for other servers.

    libpq would apply PGOPTIONS, PGHOSTADDR, PGTARGETSESSIONATTRS… to every connection
    (ours, psql's, pgbench's); they describe the user's own servers, so they are dropped.
    With DATABASE_URL set they apply as libpq documents (values the URL leaves out).
    """
    from hotelbot_cli.settings import database_url_from_env, libpq_env_names

    if database_url_from_env() is not None:
        return

    for name in libpq_env_names():
        del os.environ[name]


#: Libraries whose own log records (a pool that cannot roll back a dead connection, a psycopg
#: pipeline that cannot be closed) would reach stderr through logging's last resort, with
#: tracebacks, after the error that caused them has already been reported in one line.
_LIBRARY_LOGGERS = ("sqlalchemy", "psycopg")
_library_handler = logging.NullHandler()


def _quiet_library_loggers(debug: bool) -> None:
    """Silence the libraries' warnings unless ``--debug`` asks for the details."""
    for name in _LIBRARY_LOGGERS:
        target = logging.getLogger(name)
        if debug:
            target.removeHandler(_library_handler)
        elif _library_handler not in target.handlers:
            target.addHandler(_library_handler)


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (never raises, never prints a traceback unasked)."""
    from hotelbot_cli.cli import _output as out

    argv = sys.argv[1:] if argv is None else argv
    _argv[:] = argv
    _ignore_libpq_env_for_embedded()
    debug = _debug_requested(argv)
    _quiet_library_loggers(debug)
    try:
        result = app(args=argv, prog_name="hotelbot", standalone_mode=False)
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        out.error("aborted")
        return 130
    except _ClickException as exc:
        message = exc.format_message()  # type: ignore[attr-defined]
        if type(exc).__name__ == "NoArgsIsHelpError":  # a group called without a command
            out.line(message)
        elif message:  # empty when a group was called without a command and showed its help
            ctx = getattr(exc, "ctx", None)
            command = ctx.command_path if ctx is not None else "hotelbot"
            out.error(message, f"see {command} --help")
        return getattr(exc, "exit_code", EXIT_USAGE) or EXIT_USAGE
    except KeyboardInterrupt:
        out.error("interrupted", "nothing half-done was committed")
        return 130
    except HotelbotError as exc:
        if debug:
            out.traceback_text()
        out.error(exc.message, exc.hint)
        return exc.exit_code
    except Exception as exc:
        if debug:
            out.traceback_text()
        known = _translate(exc)
        if known is None:
            out.error(f"unexpected {type(exc).__name__}: {exc}", "rerun with --debug for details")
            return EXIT_FAILED
        out.error(known.message, known.hint)
        return known.exit_code
    return result if isinstance(result, int) else 0


def main() -> None:
    """Console-script entry point."""
    sys.exit(run())
