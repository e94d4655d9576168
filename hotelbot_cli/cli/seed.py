"""``hotelbot seed``: fill the database with realistic, deterministic multi-tenant data."""

from __future__ import annotations

import datetime as dt
import sys
from typing import Annotated, Any

import typer

from hotelbot_cli.cli import _output as out
from hotelbot_cli.cli._common import JsonOption, count_option, engine
from hotelbot_cli.errors import UsageError


def _reference(value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"--reference-time {value!r} is not an ISO date-time", "e.g. 2026-01-01T00:00:00Z"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def seed_command(  # noqa: PLR0917 - one parameter per CLI option
    hotels: Annotated[int, count_option("--hotels", help="Hotels (tenants) to create.")] = 50,
    guests_per_hotel: Annotated[
        int, count_option(help="Guests of each hotel.", maximum=1_000_000)
    ] = 100,
    conversations_per_guest: Annotated[int, count_option(help="Conversations per guest.")] = 2,
    messages_per_conversation: Annotated[int, count_option(help="Messages per conversation.")] = 10,
    triggers_per_hotel: Annotated[int, count_option(help="Triggers of each hotel.", minimum=0)] = 5,
    seed: Annotated[
        int,
        count_option(
            "--seed",
            help="Same seed and options → identical rows, ids included.",
            minimum=0,
            maximum=2**63 - 1,
        ),
    ] = 42,
    reference_time: Annotated[
        str | None,
        typer.Option(
            help="Timestamps lie in the 90 days before this ISO time "
            "(default: today 00:00 UTC, so data looks recent and stays identical all day)."
        ),
    ] = None,
    append: Annotated[
        bool, typer.Option("--append", help="Add new hotels beside the existing ones.")
    ] = False,
    truncate: Annotated[
        bool, typer.Option("--truncate", help="Empty our tables first (same transaction).")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask before --truncate.")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the row counts it would write; write nothing.")
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress display (also when not a TTY).")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Seed the database with realistic hotels, guests, conversations and messages.

    Refuses a database that already holds hotels unless --append or --truncate is given.
    Everything is written in one transaction: an interrupted run leaves nothing behind.
    """
    from hotelbot_cli.seed import Mode, SeedOptions
    from hotelbot_cli.seed import seed as run_seed

    if append and truncate:
        raise UsageError("--append and --truncate exclude each other", "choose one")
    mode = Mode.APPEND if append else Mode.TRUNCATE if truncate else Mode.REFUSE
    options = SeedOptions(
        hotels=hotels,
        guests_per_hotel=guests_per_hotel,
        conversations_per_guest=conversations_per_guest,
        messages_per_conversation=messages_per_conversation,
        triggers_per_hotel=triggers_per_hotel,
        seed=seed,
        reference_time=_reference(reference_time),
        mode=mode,
        dry_run=dry_run,
    )
    if truncate and not dry_run and not yes:
        if not sys.stdin.isatty():
            raise UsageError("--truncate deletes every hotel and its data", "add --yes to confirm")
        typer.confirm("Delete every hotel and all their data first?", abort=True)
    db = engine()
    show = not (quiet or as_json or dry_run) and out.err_console.is_terminal
    if show:
        with _ProgressDisplay() as display:
            report = run_seed(db, options, display.update)
    else:
        report = run_seed(db, options)
    numbers = _numbers_to_try(options, report)
    if as_json:
        out.emit_json({**out.to_jsonable(report), "try": numbers}, "seed")
        return
    _summary(report)
    if numbers and not report.dry_run:
        out.line("WhatsApp numbers of active seeded hotels to try: " + ", ".join(numbers))


def _numbers_to_try(options: Any, report: Any, count: int = 3) -> list[str]:
    """A few numbers of hotels this run made that are active (some seeded hotels are not)."""
    from hotelbot_cli.seed import generators

    first = report.hotels_before if report.mode == "append" else 0
    numbers: list[str] = []
    for index in range(first, first + options.hotels):
        row = generators.hotel(options, index, set()).row
        if row[6] is True:  # is_active
            numbers.append(str(row[2]))
        if len(numbers) == count:
            break
    return numbers


def _summary(report: Any) -> None:
    verb = "Would write" if report.dry_run else "Wrote"
    rows = [(table, f"{count:,}") for table, count in report.rows.items()]
    rows.append(("total", f"{report.total_rows:,}"))
    title = f"{verb} (seed {report.seed})"
    out.table(title, ["table", "rows"], rows, justify={"rows": "right"})
    if report.dry_run:
        if report.hotels_before and report.mode == "refuse":
            out.info(f"the database holds {report.hotels_before} hotel(s): a real run would refuse")
        return
    phases = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in report.phases.items())
    out.line(
        f"{report.total_rows:,} rows in {report.seconds:.2f} s "
        f"({report.rows_per_second:,.0f} rows/s; {phases})"
    )


class _ProgressDisplay:
    """A rich progress bar per table (rows, rows/s, ETA) on stderr."""

    def __init__(self) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeRemainingColumn,
        )

        from hotelbot_cli.seed import UNRATED

        self.progress = Progress(
            TextColumn("{task.description:<20}"),
            BarColumn(),
            TaskProgressColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]:>12}"),
            TimeRemainingColumn(),
            console=out.err_console,
            transient=False,
        )
        self.tasks: dict[str, Any] = {}
        self.unrated = UNRATED  # steps whose count is not of rows: no rate

    def __enter__(self) -> _ProgressDisplay:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def update(self, step: str, done: int, total: int) -> None:
        task = self.tasks.get(step)
        if task is None:
            task = self.tasks[step] = self.progress.add_task(step, total=total, rate="")
        self.progress.update(task, completed=done, total=total)
        speed = self.progress.tasks[task].speed
        rate = f"{speed:,.0f}/s" if speed and step not in self.unrated else ""
        self.progress.update(task, rate=rate)
