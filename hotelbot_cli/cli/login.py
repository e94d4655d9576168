"""``hotelbot db create-login``: the bot's own login role, a member of app_user only."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hotelbot_cli.cli import _output as out
from hotelbot_cli.cli._common import engine

PASSWORD_ENV = "HOTELBOT_APP_PASSWORD"  # noqa: S105 - the name of a variable, not a secret


def create_login(
    name: Annotated[str, typer.Argument(help="Name of the login role, e.g. hotelbot_bot.")],
    env_file: Annotated[
        Path | None,
        typer.Option(
            "--env-file",
            help="Write HOTELBOT_APP_DATABASE_URL and HOTELBOT_TENANT_KEY here (mode 0600).",
        ),
    ] = None,
) -> None:
    """Create the bot's login (LOGIN, member of app_user only); print its redacted URL.

    The password comes from HOTELBOT_APP_PASSWORD or a prompt; it is never echoed.
    """
    from hotelbot_cli.db.login import create_login as make
    from hotelbot_cli.settings import app_password_from_env

    password = app_password_from_env() or typer.prompt(
        f"Password for {name}", hide_input=True, confirmation_prompt=True, err=True
    )
    result = make(engine(), name, password, env_file=env_file)
    out.info(f"{'Created' if result.created else 'Updated'} login {result.name}.")
    if result.env_file:
        out.info(f"Wrote HOTELBOT_APP_DATABASE_URL and HOTELBOT_TENANT_KEY to {result.env_file}.")
    out.line(result.url)
