"""Deterministic rows for the small tables, computed from (seed, table, row number) only.

Every value comes from a keyed BLAKE2b hash of its coordinates, never from a
stateful RNG, so any row can be made alone, in any order, on any machine, and
the same options give byte-identical data. Messages are made by the server
(see ``server_side``) from per-hotel hash seeds computed here.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from hotelbot_cli.seed import content as c
from hotelbot_cli.seed.options import SeedOptions
from hotelbot_cli.seed.rows import Row, row_type

HotelRow = row_type("hotels")
TriggerRow = row_type("triggers")
GuestRow = row_type("guests")
ConversationRow = row_type("conversations")
NotificationRow = row_type("staff_notifications")

DAY = 86_400
_LOW60 = (1 << 60) - 1


#: Between the parts of a hash key.
_SEP = "\x1f"


def _joined(*parts: object) -> str:
    """The hash key of ``parts``: their text, ``_SEP`` between them."""
    return _SEP.join(map(str, parts))


def h64(*parts: object) -> int:
    """An unsigned 64-bit hash of the parts (stable across machines and Python versions)."""
    return _hash64(_joined(*parts))


def _hash64(key: str) -> int:
    """:func:`h64` of parts already joined (see :func:`_guest_keys`)."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big")


def signed(value: int) -> int:
    """An unsigned 64-bit value as a PostgreSQL bigint."""
    return value - 2**64 if value >= 2**63 else value


def det_uuid(ts: dt.datetime, *parts: object) -> uuid.UUID:
    """A UUIDv7-shaped id: the timestamp's milliseconds, then 74 bits of hash of ``parts``."""
    return _uuid7(int(ts.timestamp()) * 1000, _joined(*parts))


def _uuid7(ms: int, key: str) -> uuid.UUID:
    """:func:`det_uuid` of a time in milliseconds and parts already joined."""
    # 72 bits of the hash: 12 after the version nibble, 60 after the variant nibble
    bits = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=10).digest(), "big") >> 8
    return uuid.UUID(int=ms << 80 | 0x7 << 76 | (bits >> 60) << 64 | 0x8 << 60 | bits & _LOW60)


def pick(options: Sequence[str], value: int) -> str:
    return options[value % len(options)]


def weighted(weights: dict[str, int], value: int) -> str:
    point = value % sum(weights.values())
    for key, weight in weights.items():
        point -= weight
        if point < 0:
            return key
    raise AssertionError("unreachable")  # pragma: no cover


@dataclass
class HotelPlan:
    """A hotel row and what its guests and messages are generated from."""

    index: int
    id: uuid.UUID
    row: Row
    staff_lang: int
    countries: dict[str, int]
    created_at: dt.datetime
    hseed: int
    triggers: list[Row] = field(default_factory=list)
    alert: Row | None = None


def hotel_created(opts: SeedOptions, index: int) -> dt.datetime:
    return opts.reference - dt.timedelta(
        seconds=400 * DAY + h64(opts.seed, "hotel", index) % (1000 * DAY)
    )


def hotel_id(opts: SeedOptions, index: int) -> uuid.UUID:
    return det_uuid(hotel_created(opts, index), opts.seed, "hotels", index)


def hotel(opts: SeedOptions, index: int, taken: set[str]) -> HotelPlan:
    """Hotel number ``index``: name, number, Green API instance, settings, triggers, alert."""
    seed, ref = opts.seed, opts.reference
    name, city, tz, prefix, lang, countries = c.HOTELS[index % len(c.HOTELS)]
    generation = index // len(c.HOTELS)
    suffixes = c.HOTEL_SUFFIXES_RU if lang == "ru" else c.HOTEL_SUFFIXES
    full = name + suffixes[generation % len(suffixes)]
    if generation >= len(suffixes):
        full += f" {generation // len(suffixes) + 1}"
    digits = 8 if prefix == "+4420" else 7  # national numbers of 10-11 digits
    sub = (h64(seed, "whatsapp") + index * 7919) % 10**digits
    number = f"{prefix}{sub:0{digits}d}"
    while number in taken:  # another run's hotel (--append): move on deterministically
        sub = (sub + 1) % 10**digits
        number = f"{prefix}{sub:0{digits}d}"
    taken.add(number)
    hv = h64(seed, "hotel", index)
    created = hotel_created(opts, index)
    updated = created + dt.timedelta(seconds=(hv >> 20) % (300 * DAY))
    languages = [lang, *(x for x in ("en", "ru") if x != lang)]
    settings = {
        "languages": languages,
        "default_language": lang,
        "check_in_time": pick(("14:00", "15:00", "13:00"), hv >> 8),
        "check_out_time": pick(("12:00", "11:00"), hv >> 12),
        "timezone": tz,
        "city": city,
        "rooms": 40 + (hv >> 16) % 260,
        "sentiment_alerts": True,
    }
    hid = hotel_id(opts, index)
    row = HotelRow(
        id=hid,
        name=full,
        whatsapp_number=number,
        green_api_instance_id=f"1101{(hv >> 24) % 1_000_000:06d}",
        green_api_token="fake-"
        + hashlib.blake2b(f"{seed}:{index}".encode(), digest_size=22).hexdigest(),
        settings=json.dumps(settings, ensure_ascii=False),
        is_active=(hv >> 40) % 20 != 0,
        created_at=created,
        updated_at=updated,
    )
    plan = HotelPlan(
        index=index,
        id=hid,
        row=row,
        staff_lang=c.LANGUAGES.index(lang),
        countries=countries,
        created_at=created,
        hseed=signed(h64(seed, "hotel-messages", index)),
    )
    templates = c.TRIGGERS[lang]
    for t in range(opts.triggers_per_hotel):
        tname, kind, conditions, template = templates[t % len(templates)]
        if t >= len(templates):
            tname += f" ({t // len(templates) + 1})"
        tv = h64(seed, "triggers", index, t)
        tcreated = created + dt.timedelta(seconds=tv % (30 * DAY))
        plan.triggers.append(
            TriggerRow(
                id=det_uuid(tcreated, seed, "triggers", index, t),
                hotel_id=hid,
                name=tname,
                trigger_type=kind,
                conditions=json.dumps(conditions, ensure_ascii=False),
                message_template=template,
                is_active=(tv >> 32) % 10 != 0,
                priority=1 + t % 10,
                created_at=tcreated,
                updated_at=tcreated + dt.timedelta(seconds=(tv >> 40) % (60 * DAY)),
            )
        )
    alert_at = ref - dt.timedelta(seconds=3600 + hv % (20 * DAY))
    plan.alert = NotificationRow(
        id=det_uuid(alert_at, seed, "alerts", index),
        hotel_id=hid,
        guest_id=None,
        message_id=None,
        notification_type="system_alert",
        title=c.NOTIFICATION_TITLES[lang][2],
        content=pick(c.SYSTEM_ALERTS, hv >> 44),
        status="acknowledged",
        sent_at=alert_at + dt.timedelta(seconds=3),
        acknowledged_at=alert_at + dt.timedelta(minutes=12 + (hv >> 50) % 100),
        created_at=alert_at,
    )
    return plan


@dataclass
class GuestRows:
    """One guest row and the rows/parameters of that guest's conversations."""

    row: Row
    conversations: list[Row]
    #: per conversation: (conv id, hotel id, guest id, t0, t1, lang, first name, hseed, number,
    #: staff language) — the server generates the messages from these.
    params: list[tuple[object, ...]]


def phone(country: str, value: int, j: int) -> str:
    """A valid E.164 mobile number of ``country``; distinct for distinct ``j`` < 10**6."""
    _lang, prefix, starts, length = c.COUNTRIES[country]
    start = pick(starts, value)
    digits = length - len(start)
    sub = (value % 10**digits + j * 7919) % 10**digits
    return f"{prefix}{start}{sub:0{digits}d}"


@functools.lru_cache(maxsize=64)
def _guest_keys(seed: int, hotel_index: int) -> tuple[str, str, str, str]:
    """The joined leading parts of a hotel's guest hashes (``h64(seed, "guests", index, j)``
    is ``_hash64(guests_key + str(j))``): joining them anew for every guest cost a fifth of
    the hashing."""
    guests, conv, span, conversations = (
        _joined(seed, table, hotel_index) + _SEP
        for table in ("guests", "conv", "span", "conversations")
    )
    return guests, conv, span, conversations


@functools.lru_cache(maxsize=4096)
def _phone_seed(seed: int, hotel_index: int, country: str) -> int:
    """The hash behind a hotel's numbers of one country: the same for all its guests."""
    return h64(seed, "phone", hotel_index, country)


@functools.cache
def _preferences(lang: str, country: str, room_type: str, diet: str, newsletter: bool) -> str:
    """A guest's preferences as JSON text: a few hundred distinct values in all, so each is
    encoded once (``json.dumps`` was a fifth of the generator's time)."""
    preferences = {
        "language": lang,
        "country": country,
        "room_type": room_type,
        "diet": diet,
        "newsletter": newsletter,
    }
    return json.dumps(preferences, ensure_ascii=False)


def guest(opts: SeedOptions, plan: HotelPlan, j: int) -> GuestRows:
    """Guest ``j`` of a hotel, from a country typical of that hotel, and their conversations."""
    seed, ref = opts.seed, opts.reference
    guests_key, conv_key, span_key, conversations_key = _guest_keys(seed, plan.index)
    gv = _hash64(f"{guests_key}{j}")
    country = weighted(plan.countries, gv)
    lang = c.COUNTRIES[country][0]
    female = (gv >> 16) & 1
    first = pick(c.FIRST_NAMES[lang][female], gv >> 17)
    last = pick(c.LAST_NAMES[lang], gv >> 25)
    if lang == "ru" and female and last.endswith(("ов", "ев", "ёв", "ин")):
        last += "а"
    number = phone(country, _phone_seed(seed, plan.index, country), j)
    conv_count = opts.conversations_per_guest
    m = opts.messages_per_conversation
    ends = sorted(
        (
            ref
            - dt.timedelta(
                seconds=3600
                + ((_hash64(f"{conv_key}{j}{_SEP}{k}") % 10**6) ** 2 * 90 * DAY) // 10**12
            )
            for k in range(conv_count)
        ),
    )
    opened: list[tuple[uuid.UUID, str, dt.datetime, dt.datetime]] = []
    params: list[tuple[object, ...]] = []
    hid = plan.id
    first_start = ref
    for k, end in enumerate(ends):
        # messages are evenly spaced, a whole number of seconds apart: the last at ``end``
        step = 30 + _hash64(f"{span_key}{j}{_SEP}{k}") % 600
        start = end - dt.timedelta(seconds=step * (m - 1))
        first_start = min(first_start, start)
        start_ms = int(start.timestamp()) * 1000
        cid = _uuid7(start_ms, f"{conversations_key}{j}{_SEP}{k}")
        # Only a guest's latest conversation may still be open (one active per guest).
        latest = k == len(ends) - 1
        status = "active" if latest and ref - end < dt.timedelta(days=2) else "closed"
        opened.append((cid, status, end, start))
        params.append(
            (
                cid,
                hid,
                None,
                start,
                start_ms,
                step * 1000,
                c.LANGUAGES.index(lang),
                first,
                plan.hseed,
                j * conv_count + k,
                plan.staff_lang,
            )
        )
    created = first_start - dt.timedelta(seconds=gv >> 40 & 0xFFFFF)
    gid = _uuid7(int(created.timestamp()) * 1000, f"{guests_key}{j}")
    conversations = [
        ConversationRow(
            id=cid, hotel_id=hid, guest_id=gid, status=status, last_message_at=end, created_at=start
        )
        for cid, status, end, start in opened
    ]
    params = [(x[0], x[1], gid, *x[3:]) for x in params]
    preferences = _preferences(
        lang, country, pick(c.ROOM_TYPES, gv >> 30), pick(c.DIETS, gv >> 34), bool((gv >> 38) & 1)
    )
    row = GuestRow(
        id=gid,
        hotel_id=hid,
        phone=number,
        name=f"{first} {last}",
        preferences=preferences,
        last_interaction=ends[-1],
        created_at=created,
        updated_at=ends[-1],
    )
    return GuestRows(row=row, conversations=conversations, params=params)


def titles() -> list[str]:
    """Notification titles per staff language: [negative, urgent] for each language in order."""
    return [t for lang in c.LANGUAGES for t in c.NOTIFICATION_TITLES[lang][:2]]


def hotels_iter(opts: SeedOptions, first_index: int, taken: set[str]) -> Iterator[HotelPlan]:
    """The hotels in the order of their ids: rows then reach the tables grouped by hotel_id,
    the leading column of every tenant index, and the indexes build ~30 % faster."""
    indexes = range(first_index, first_index + opts.hotels)
    for index in sorted(indexes, key=lambda i: hotel_id(opts, i)):
        yield hotel(opts, index, taken)
