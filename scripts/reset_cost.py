"""Cost of the pool's DISCARD ALL on check-in: a checkout + one query + check-in, with and
without the reset, interleaved in rounds on one pooled connection (python scripts/reset_cost.py)."""

from __future__ import annotations

import statistics
import sys
import time

from sqlalchemy import event, text

from hotelbot_cli.db.engine import _discard_on_checkin, make_engine
from hotelbot_cli.settings import Settings


def main(rounds: int = 7, n: int = 2000) -> None:
    engine = make_engine(settings=Settings.from_env({"HOTELBOT_POOL_SIZE": "1"}))
    query = text("SELECT 1")

    def per_checkout() -> float:
        start = time.perf_counter()
        for _ in range(n):
            with engine.connect() as conn:
                conn.execute(query)
        return (time.perf_counter() - start) / n * 1e6

    with_reset, without = [], []
    for _ in range(rounds):
        with_reset.append(per_checkout())
        event.remove(engine.pool, "checkin", _discard_on_checkin)
        without.append(per_checkout())
        event.listen(engine.pool, "checkin", _discard_on_checkin)
    a, b = statistics.median(with_reset), statistics.median(without)
    print(
        f"checkout+SELECT 1+checkin: {a:.0f} µs with DISCARD ALL, {b:.0f} µs without,"
        f" reset costs {a - b:.0f} µs ({a / b:.2f}×)"
    )


if __name__ == "__main__":
    main(*(int(x) for x in sys.argv[1:]))
