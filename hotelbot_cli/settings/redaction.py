"""URLs and arbitrary text as they may be shown or logged: never a password.

Passwords are found in URL user info, ``?password=`` query strings and keyword DSNs,
quoted or not; every other module that shows a URL or an error goes through here.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from hotelbot_cli.settings.user_info import split_user_info

if TYPE_CHECKING:
    from sqlalchemy.engine import URL


#: ``scheme://user:password@`` up to the LAST ``@`` of the URL (a password may hold ``@``).
_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)\S*@")
#: ``password=…`` in a query string or a keyword DSN, quoted or not.
_KEYWORD_PASSWORD = re.compile(
    r"""\b((?:ssl)?pass(?:word|wd)?|pwd)(\s*=\s*)"""
    # already redacted (a second pass keeps the quote that follows), quoted, or bare
    r"""(\*\*\*(?=$|[\s&;'"])|'(?:[^'\\]|\\.)*'|"[^"]*"|(?:\\.|[^\s&;\\])+)""",
    re.IGNORECASE,
)


def redact_text(text: str) -> str:
    """Hide passwords in arbitrary text: URL user info, ``?password=``, keyword DSNs."""
    text = _URL_PASSWORD.sub(r"\1***@", text)
    return _KEYWORD_PASSWORD.sub(r"\1\2***", text)


def display_url(raw: str) -> str:
    """Any text given as a URL, as it may be shown: never its password, however spelled."""
    text = raw.strip()
    if "://" in text:
        scheme, rest = text.split("://", 1)
        info, tail = split_user_info(rest)
        if info is not None:
            user, colon, _ = info.partition(":")
            text = f"{scheme}://{user}{':***' if colon else ''}@{tail}"
    return _KEYWORD_PASSWORD.sub(r"\1\2***", text)


def redact_url(url: URL | str) -> str:
    """The URL as it may be shown or logged: every password replaced by ***.

    A parsed URL is shown as a user writes it: ``postgresql://``, no ``:***`` for an empty
    password (the embedded server has none), socket paths with their slashes.
    """
    if isinstance(url, str):
        return redact_text(url)
    shown = url.set(drivername="postgresql")
    if not url.password:
        shown = shown._replace(password=None)  # URL.set(password=None) would keep it
    return redact_text(shown.render_as_string(hide_password=True)).replace("%2F", "/")
