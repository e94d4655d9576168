"""Cost of the pool's reset, per checkout (python scripts/reset_cost.py [rounds n]).

A checkout that runs two parameterised queries (psycopg prepares them on their 5th run) and
commits, on one-connection engines interleaved in rounds: the shipped reset (sent at check-in,
read at checkout), the same reset waited for at check-in, a plain DISCARD ALL at check-in
(every checkout then parses and plans its statements again), and no reset at all. Needs a
migrated database (DATABASE_URL, else the embedded default).
"""

from __future__ import annotations

import statistics
import sys
import time
import uuid
from typing import Any

from sqlalchemy import Engine, create_engine, event, text

from hotelbot_cli.db import reset
from hotelbot_cli.db.engine import _engine_kwargs, make_engine, resolve_url
from hotelbot_cli.settings import Settings


def _discard_all(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.autocommit = True
    dbapi_connection.cursor().execute("DISCARD ALL")
    dbapi_connection.autocommit = False
    reset.forget_prepared(dbapi_connection)


def _waited_for(dbapi_connection: Any, _record: Any) -> None:
    reset.reset_now(dbapi_connection)


def _no_reset(_dbapi_connection: Any, _record: Any) -> None:
    pass


def _engine(checkin: Any = None) -> Engine:
    """An engine with the shipped reset, or with ``checkin`` as its only reset."""
    settings = Settings.from_env({"HOTELBOT_POOL_SIZE": "1", "HOTELBOT_POOL_PRE_PING": "0"})
    if checkin is None:
        return make_engine(settings=settings)
    kwargs = {**_engine_kwargs(settings, {}), "pool_pre_ping": False}
    engine = create_engine(resolve_url(None, settings), **kwargs)
    event.listen(engine.pool, "checkin", checkin)
    return engine


def main(rounds: int = 7, n: int = 1000) -> None:
    engines = {
        "reset, read at checkout": _engine(),
        "reset, waited for": _engine(_waited_for),
        "DISCARD ALL": _engine(_discard_all),
        "no reset": _engine(_no_reset),
    }
    hotel = text("SELECT id FROM hotels WHERE id = :h")
    guest = text("SELECT id FROM guests WHERE hotel_id = :h AND phone = :p")
    args = {"h": uuid.uuid4(), "p": "+70000000000"}

    def per_checkout(engine: Engine) -> float:
        start = time.perf_counter()
        for _ in range(n):
            with engine.connect() as conn:
                conn.execute(hotel, args)
                conn.execute(guest, args)
                conn.commit()
        return (time.perf_counter() - start) / n * 1e6

    times: dict[str, list[float]] = {name: [] for name in engines}
    for _ in range(rounds):
        for name, engine in engines.items():
            times[name].append(per_checkout(engine))
    base = statistics.median(times["no reset"])
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:24s} {median:7.0f} µs per checkout ({median / base:.2f}× no reset)")


if __name__ == "__main__":
    main(*(int(x) for x in sys.argv[1:]))
