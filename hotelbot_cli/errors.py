"""The few exceptions the library raises; the CLI turns each into one line and an exit code.

Exit codes (documented in the README): 0 ok, 1 failed check or operation,
2 usage error (bad input), 3 cannot connect or lock timeout.
"""

from __future__ import annotations

from typing import Protocol

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3


class HotelbotError(Exception):
    """An error the user can act on: a message, an optional hint and an exit code."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message

    def __reduce__(self) -> tuple[type[HotelbotError], tuple[str, str | None]]:
        """Pickled with its hint (the seed's forked generator sends its errors this way)."""
        return type(self), (self.message, self.hint)


class UsageError(HotelbotError):
    """Bad input: a malformed URL, an unknown revision, a negative count."""

    exit_code = EXIT_USAGE


class ConfigError(UsageError):
    """The configuration (environment variables, URL) is not usable."""


class ConnectionFailed(HotelbotError):
    """The database server cannot be reached or refused the login."""

    exit_code = EXIT_UNAVAILABLE


class LockTimeout(HotelbotError):
    """Another process holds a lock we waited for too long (e.g. a concurrent migration)."""

    exit_code = EXIT_UNAVAILABLE


class PoolTimeout(HotelbotError):
    """Every pooled connection stayed checked out past the pool timeout."""

    exit_code = EXIT_UNAVAILABLE


class DatabaseError(HotelbotError):
    """The database refused an operation (a constraint, a failed migration)."""


class NotAtHead(HotelbotError):
    """The database schema is not at the latest migration."""


class CheckFailed(HotelbotError):
    """A check ran and found problems (rls-check, db check, bench thresholds).

    Raised after the findings were rendered in full: the CLI's one mapper turns it into
    one ``error:`` line and exit 1, so no command exits by itself.
    """


class Verdict(Protocol):
    """A library result that knows whether it passed: ``failure()`` is None when it did."""

    def failure(self) -> CheckFailed | None: ...


def raise_if_failed(result: Verdict) -> None:
    """Raise ``result``'s CheckFailed, if any: the one way a finding becomes exit 1."""
    failure = result.failure()
    if failure is not None:
        raise failure
