"""Cost of the pool's check-in reset: checkout + the WhatsApp lookup + check-in, with
``DISCARD ALL``, with hotelbot's reset (``RESET_SESSION``: a census of the prepared
statements, then all of DISCARD ALL but DISCARD PLANS and DEALLOCATE ALL), and with no
reset at all, interleaved in short rounds on one pooled connection (p50 of every checkout:
the host is noisy).

The lookup is a PL/pgSQL function: DISCARD ALL drops its cached plans, so the next request
plans them again; keeping them costs a longer reset. Run on a migrated, seeded database
(``DATABASE_URL``, else the embedded default):
``python scripts/reset_cost.py [rounds] [checkouts per form and round]``.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from typing import Any

from sqlalchemy import event, text

from hotelbot_cli.db import engine as engine_module
from hotelbot_cli.db.engine import RESET_SESSION, _discard_on_checkin, make_engine
from hotelbot_cli.settings import Settings


def main(rounds: int = 30, n: int = 200) -> None:
    env = {**os.environ, "HOTELBOT_POOL_SIZE": "1"}  # DATABASE_URL still counts
    engine = make_engine(settings=Settings.from_env(env), pool_pre_ping=False)
    with engine.connect() as conn:
        number = conn.execute(
            text("SELECT whatsapp_number FROM hotels WHERE is_active LIMIT 1")
        ).scalar_one()
    lookup = text("SELECT hotelbot_hotel_id_for_whatsapp(:n)")

    def per_checkout() -> list[int]:
        times = []
        for _ in range(n):
            start = time.perf_counter_ns()
            with engine.connect() as conn:
                conn.execute(lookup, {"n": number})
            times.append(time.perf_counter_ns() - start)
        return times

    def no_reset(_dbapi_connection: Any, _record: Any) -> None:
        return None

    forms = {"DISCARD ALL": "DISCARD ALL", "ours": RESET_SESSION, "no reset": None}
    times: dict[str, list[int]] = {name: [] for name in forms}
    for _ in range(rounds):
        for name, statement in forms.items():
            if statement is None:
                event.remove(engine.pool, "checkin", _discard_on_checkin)
                event.listen(engine.pool, "checkin", no_reset)
            else:
                engine_module.RESET_SESSION = statement
            times[name] += per_checkout()
            if statement is None:
                event.remove(engine.pool, "checkin", no_reset)
                event.listen(engine.pool, "checkin", _discard_on_checkin)
        engine_module.RESET_SESSION = RESET_SESSION
    engine.dispose()
    base = statistics.median(times["no reset"]) / 1000
    for name, values in times.items():
        median = statistics.median(values) / 1000
        print(f"checkout + lookup + check-in, {name}: p50 {median:.0f} µs ({median / base:.2f}×)")


if __name__ == "__main__":
    main(*(int(x) for x in sys.argv[1:]))
