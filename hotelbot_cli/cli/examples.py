"""An example for every command's ``--help``, kept in one table (and checked by a test that
parses each one against the command it names, so an example cannot drift from its options)."""

from __future__ import annotations

from typing import Any

#: command path (after ``hotelbot``) -> example invocations, most common first.
EXAMPLES: dict[str, tuple[str, ...]] = {
    "seed": (
        "hotelbot seed --hotels 50 --truncate --yes",
        "hotelbot seed --hotels 5 --guests-per-hotel 20 --seed 7 --dry-run",
        "hotelbot seed --hotels 10 --append --json",
    ),
    "rls-check": (
        "hotelbot rls-check",
        "hotelbot rls-check --json --junit-xml rls.xml",
        "hotelbot rls-check --self-test",
    ),
    "bench": (
        "hotelbot bench --duration 20 --concurrency 4",
        "hotelbot bench --json -o base.json",
        "hotelbot bench --compare base.json --fail-on-regression --fail-if '*.errors>0'",
    ),
    "db upgrade": ("hotelbot db upgrade", "hotelbot db upgrade 008 --json"),
    "db downgrade": ("hotelbot db downgrade -1", "hotelbot db downgrade base --yes"),
    "db current": ("hotelbot db current", "hotelbot db current --check"),
    "db history": ("hotelbot db history", "hotelbot db history --json"),
    "db heads": ("hotelbot db heads",),
    "db check": ("hotelbot db check", "hotelbot db check --json"),
    "db sql": ("hotelbot db sql base:head > schema.sql", "hotelbot db sql 007:008"),
    "db revision": (
        "hotelbot db revision -m 'add a column to guests' --autogenerate",
        "hotelbot db revision -m 'backfill guest language'",
    ),
    "db stamp": ("hotelbot db stamp head",),
    "db stats": ("hotelbot db stats", "hotelbot db stats --watch 5", "hotelbot db stats --json"),
    "db create-login": (
        "HOTELBOT_APP_PASSWORD=… hotelbot db create-login hotelbot_bot --env-file bot.env",
    ),
    "db distribute": ("hotelbot db distribute --dry-run", "hotelbot db distribute --json"),
    "db lint": ("hotelbot db lint", "hotelbot db lint 009 010 --json"),
    "server start": ("hotelbot server start",),
    "server stop": ("hotelbot server stop",),
    "server status": ("hotelbot server status", "hotelbot server status --json"),
    "server url": ('psql "$(hotelbot server url)"',),
}


def epilog(path: str) -> str | None:
    """The help's examples section (``\\b``: click keeps the lines as they are); None for a
    command without examples (a test fails on it; the CLI still runs)."""
    if path not in EXAMPLES:
        return None
    lines = "\n".join(f"  {example}" for example in EXAMPLES[path])
    return f"Examples:\n\n\b\n{lines}"


def attach(app: Any, prefix: str = "") -> None:
    """Give every command of ``app`` (a Typer app, its groups included) its examples."""
    for info in app.registered_commands:
        name = info.name or info.callback.__name__.replace("_", "-")
        info.epilog = epilog(f"{prefix}{name}")
    for group in app.registered_groups:
        if group.typer_instance is not None:
            attach(group.typer_instance, f"{prefix}{group.name} ")
