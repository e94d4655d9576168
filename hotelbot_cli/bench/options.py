"""What ``hotelbot bench`` is asked to do and what it shows while it runs (no database)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hotelbot_cli.bench import workload
from hotelbot_cli.errors import UsageError

TENANT_LOGINS = ("login", "set-role")


@dataclass(frozen=True)
class BenchOptions:
    """How to run the bench (see ``hotelbot bench --help``)."""

    duration: float | None = 10.0
    iterations: int | None = None
    concurrency: int = 1
    engine: str = "sync"  # sync | async
    ops: tuple[str, ...] = ()
    seed: int = 42
    reference: bool = True
    reference_seconds: float = 3.0
    isolation: bool = True
    isolation_iterations: int = 200  # tenant/owner pairs per operation (--isolation-iterations)
    explain: bool = True
    pre_ping: bool = False
    pool_size: int | None = None  # default: the concurrency
    max_overflow: int | None = None  # default: the configured HOTELBOT_MAX_OVERFLOW
    warmup: int = 6  # per operation per worker: psycopg prepares a statement on its 5th run
    targets_per_hotel: int = 200
    #: How the tenant side connects: ``login`` as a dedicated login that is a member of
    #: app_user (HOTELBOT_APP_DATABASE_URL, else a throwaway role made for the run), so no
    #: role statement is sent per transaction, as the bot runs; ``set-role`` as the
    #: connecting role, switching to app_user in every transaction.
    tenant_login: str = "login"
    #: The bot's login URL (default: HOTELBOT_APP_DATABASE_URL; unset, a throwaway role).
    app_url: str | None = None
    #: Processes the main run's workers are split over (sync engine; see bench/processes.py).
    processes: int = 1

    def validate(self) -> None:
        if self.duration is None and self.iterations is None:
            raise UsageError("give --duration or --iterations")
        if self.duration is not None and self.duration <= 0:
            raise UsageError("--duration must be positive")
        if self.iterations is not None and self.iterations < 1:
            raise UsageError("--iterations must be at least 1")
        if self.concurrency < 1:
            raise UsageError("--concurrency must be at least 1")
        if self.processes < 1 or self.processes > self.concurrency:
            raise UsageError(
                "--processes must be between 1 and --concurrency",
                "each process runs at least one worker",
            )
        if self.processes > 1 and self.engine != "sync":
            raise UsageError("--processes needs --engine sync")
        if self.engine not in ("sync", "async"):
            raise UsageError(f"--engine {self.engine!r} is not known", "use sync or async")
        if self.tenant_login not in TENANT_LOGINS:
            raise UsageError(
                f"--tenant-login {self.tenant_login!r} is not known", "use login or set-role"
            )
        workload.select_operations(self.ops)


@dataclass(frozen=True)
class Progress:
    """A live view of the run, for a progress line."""

    phase: str
    elapsed_s: float = 0.0
    ops: int = 0
    errors: int = 0
    ops_per_s: float = 0.0
    planned_s: float | None = None
    planned_ops: int | None = None


ProgressFn = Callable[[Progress], None]
