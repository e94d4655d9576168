"""Where a URL's user info (``user:password``) ends, however the password is spelled.

Both parsing (:mod:`~hotelbot_cli.settings.urls`) and redaction
(:mod:`~hotelbot_cli.settings.redaction`) must agree on it: a password shown is a leak,
a password cut short is a login that fails for no visible reason.
"""

from __future__ import annotations

import re
from typing import NamedTuple


class UserInfoSplit(NamedTuple):
    """The text after ``scheme://``, split at the end of its user info."""

    user_info: str | None  # ``user[:password]`` as written; None when there is none
    rest: str  # host, port, path and query


def split_user_info(rest: str) -> UserInfoSplit:
    """``user[:password]`` and what follows it, for the text after ``scheme://``.

    The user info ends at the LAST ``@`` of the authority, as in WHATWG URLs and Python's
    urllib, so a password with a raw ``@`` (``u:p@ss@host``) keeps it and the host is
    ``host``. (libpq and SQLAlchemy stop at the first ``@`` and would send ``ss@host`` to
    DNS: a piece of the password.) The authority ends at the first ``/`` or ``?`` after the
    first ``@``; an ``@`` after a ``/`` or ``?`` with no user info before it (``h/db?user=a@b``)
    or after ``host:port/`` belongs to the path or query.
    """
    at = rest.find("@")
    if at < 0:
        return UserInfoSplit(None, rest)
    user, colon, password = rest[:at].partition(":")
    if any(c in user for c in "/?"):
        return UserInfoSplit(None, rest)  # the first "@" is in the path or the query
    if (
        colon
        and re.fullmatch(r"\d*", re.split(r"[/?]", password, maxsplit=1)[0])
        and (re.search(r"[/?]", password))
    ):
        return UserInfoSplit(None, rest)  # host:port/… with an "@" further on
    ends = [i for i in (rest.find("/", at), rest.find("?", at)) if i >= 0]
    last = rest.rfind("@", 0, min(ends) if ends else len(rest))
    return UserInfoSplit(rest[:last], rest[last + 1 :])


def url_password(raw: str) -> str | None:
    """The password in a URL's user info, as written (None when it has none)."""
    if "://" not in raw:
        return None
    info, _ = split_user_info(raw.strip().split("://", 1)[1])
    if info is None or ":" not in info:
        return None
    return info.partition(":")[2] or None
