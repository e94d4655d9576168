"""The deterministic generators: valid values, stable output, option validation."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import uuid

import pytest

from hotelbot_cli.errors import UsageError
from hotelbot_cli.models.validation import E164, trigger_conditions
from hotelbot_cli.seed import content, generators, server_side
from hotelbot_cli.seed.options import SeedOptions, start_of_utc_day

REF = dt.datetime(2026, 1, 15, tzinfo=dt.UTC)


def test_hashes_and_ids_are_stable() -> None:
    # pinned values: the data set of a seed must not change between machines or versions
    assert generators.h64(1, "x") == 5587786414374913880
    assert len({generators.h64(42, "hotel", i) for i in range(1000)}) == 1000
    assert generators.h64(42, "hotel", 0) != generators.h64(43, "hotel", 0)
    # ... nor with the interpreter's string-hash salt (a seed must not use hash())
    probe = "from hotelbot_cli.seed import generators as g; print(g.h64(42, 'hotel', 0))"
    for salt in ("1", "2"):
        out = subprocess.run(
            [sys.executable, "-c", probe],
            env={**os.environ, "PYTHONHASHSEED": salt},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert int(out) == generators.h64(42, "hotel", 0)
    ident = generators.det_uuid(REF, 42, "hotels", 0)
    assert ident.version == 7 and ident.variant == uuid.RFC_4122
    assert int(ident.hex[:12], 16) == int(REF.timestamp()) * 1000
    assert generators.signed(2**64 - 1) == -1 and generators.signed(5) == 5


def test_hotels_and_guests_are_valid_and_deterministic() -> None:
    opts = SeedOptions(hotels=30, guests_per_hotel=300, reference_time=REF, triggers_per_hotel=8)
    taken: set[str] = set()
    plans = list(generators.hotels_iter(opts, 0, taken))
    numbers = [p.row[2] for p in plans]
    assert len(set(numbers)) == 30 and all(E164.fullmatch(str(n)) for n in numbers)
    fifth = next(p for p in plans if p.index == 5)
    again = generators.hotel(opts, 5, {n for n in numbers if n != fifth.row[2]})
    assert again.row == fifth.row
    assert [p.id for p in plans] == sorted(p.id for p in plans)  # loaded in id order
    for plan in plans:
        for trig in plan.triggers:
            trigger_conditions(str(trig[3]), json.loads(str(trig[4])))
            assert "{guest_name}" in str(trig[5])
    phones, langs = set(), set()
    for j in range(300):
        rows = generators.guest(opts, plans[4], j)
        phone = str(rows.row[2])
        assert E164.fullmatch(phone)
        phones.add(phone)
        langs.add(json.loads(str(rows.row[4]))["language"])
        ends = [c[4] for c in rows.conversations]
        assert rows.row[5] == max(ends) and all(e <= REF for e in ends)
    assert len(phones) == 300 and {"ru", "en", "de", "tr"} <= langs
    # a taken number moves on instead of colliding
    first = next(p for p in plans if p.index == 0).row[2]
    clash = generators.hotel(opts, 0, {str(first)})
    assert clash.row[2] != first and E164.fullmatch(str(clash.row[2]))


def test_a_guests_ids_are_the_documented_hashes_of_its_coordinates() -> None:
    """guest() joins the hash keys from cached prefixes: the ids stay det_uuid's of
    (seed, table, hotel index, guest, conversation)."""
    opts = SeedOptions(hotels=2, guests_per_hotel=5, conversations_per_guest=3, reference_time=REF)
    plan = next(p for p in generators.hotels_iter(opts, 0, set()) if p.index == 1)
    for j in range(5):
        rows = generators.guest(opts, plan, j)
        created = rows.row.created_at
        assert rows.row.id == generators.det_uuid(created, 42, "guests", 1, j)
        starts = sorted(c.created_at for c in rows.conversations)
        ids = {c.id for c in rows.conversations}
        assert ids == {
            generators.det_uuid(start, 42, "conversations", 1, j, k)
            for k, start in enumerate(starts)
        }


def test_phrase_tables_cover_every_language_and_category() -> None:
    buckets = len(content.LANGUAGES) * len(content.CATEGORIES)
    # a branch per language, and in each a branch (an array) per category
    assert server_side.PHRASE.count(" WHEN ") == len(content.LANGUAGES) + buckets
    assert server_side.PHRASE.count("ARRAY[") == buckets
    assert server_side._literal("it's 100%") == "'it''s 100%%'"
    for lang in content.LANGUAGES:
        assert all(content.PHRASES[lang][cat] for cat in content.CATEGORIES if cat != "system")
    assert len(generators.titles()) == 2 * len(content.LANGUAGES)
    assert generators.weighted({"a": 1, "b": 1}, 3) == "b"


def test_the_default_reference_is_resolved_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A seed that runs across midnight UTC builds every row from the day it started."""
    from hotelbot_cli.seed import options

    days = iter([dt.datetime(2026, 3, 1, tzinfo=dt.UTC), dt.datetime(2026, 3, 2, tzinfo=dt.UTC)])
    monkeypatch.setattr(options, "start_of_utc_day", lambda: next(days))
    opts = SeedOptions()
    assert opts.reference == dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    assert opts.reference == dt.datetime(2026, 3, 1, tzinfo=dt.UTC)  # not the next day


def test_options_validate_and_plan() -> None:
    opts = SeedOptions(hotels=50, guests_per_hotel=1000, conversations_per_guest=1,
                       messages_per_conversation=20)  # fmt: skip
    rows = opts.planned_rows()
    assert rows["messages"] == 1_000_000 and rows["guests"] == 50_000
    assert 70_000 < rows["staff_notifications"] < 90_000
    assert opts.reference == start_of_utc_day()
    assert start_of_utc_day(dt.datetime(2026, 3, 1, 15, 30, tzinfo=dt.UTC)).hour == 0
    for bad in ({"hotels": 0}, {"triggers_per_hotel": -1}, {"seed": -1},
                {"guests_per_hotel": 2_000_000},
                {"reference_time": dt.datetime(2026, 1, 1)}):  # fmt: skip
        with pytest.raises(UsageError):
            SeedOptions(**bad)  # type: ignore[arg-type]
