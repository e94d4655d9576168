"""How the seed cuts its rows into chunks: a short first wait, whole full chunks after it."""

from __future__ import annotations

import datetime as dt

from hotelbot_cli.seed.chunks import RAMP, chunks
from hotelbot_cli.seed.options import SeedOptions

REFERENCE = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


def _options(**kwargs: int) -> SeedOptions:
    return SeedOptions(reference_time=REFERENCE, **kwargs)  # type: ignore[arg-type]


def test_the_first_full_chunk_comes_in_growing_parts() -> None:
    opts = _options(hotels=6, guests_per_hotel=100, conversations_per_guest=1,
                    messages_per_conversation=10, chunk_messages=1600)  # fmt: skip
    sizes = [len(chunk.guests) * 10 for chunk in chunks(opts, 0, set())]
    full = opts.chunk_messages
    assert sizes[0] == full // RAMP
    assert sizes[:4] == [200, 200, 400, 800]  # each part as large as all before it
    ends = [sum(sizes[: i + 1]) for i in range(len(sizes))]
    assert [end for end in ends if end >= full] == [full, 2 * full, 3 * full, 6000]


def test_chunking_changes_no_row() -> None:
    kwargs = {"hotels": 3, "guests_per_hotel": 40, "conversations_per_guest": 2,
              "messages_per_conversation": 5}  # fmt: skip

    def rows(chunk_messages: int) -> list[list[str]]:
        parts: list[list[str]] = [[], [], [], []]
        for chunk in chunks(_options(**kwargs, chunk_messages=chunk_messages), 0, set()):
            for part, items in zip(
                parts, (chunk.hotels, chunk.guests, chunk.conversations, chunk.params), strict=True
            ):
                part.extend(repr(item) for item in items)
        return [sorted(part) for part in parts]

    one_chunk = rows(10**9)
    assert len(one_chunk[1]) == 120
    assert rows(100) == one_chunk
