"""A chunk as the seeding connection sends it: binary COPY streams and binary array parameters.

The Python side's work is generating rows and turning them into bytes. Both happen where
the chunk is made (a forked process, see :mod:`hotelbot_cli.seed.forked`, or the generator
thread), so the process that holds the transaction only hands bytes on. With a generator
thread in that process, its share of the GIL stalled both server processes: sampled every
0.1 s, about 30 % of two cores sat idle during the reference dataset's messages step, which
took 3.0-4.0 s; forked, 2.6-2.7 s.

The bytes are psycopg's own: :class:`psycopg.Copy` with a :class:`~psycopg.copy.FileWriter`
formats the rows offline (``loader.write_rows``, the types of ``loader.COLUMNS``), and the
parameters are dumped by the dumpers psycopg would pick at execute time. No connection is
used while encoding; a cursor only lends its adapters.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from psycopg import Copy, Cursor
from psycopg.adapt import Dumper, PyFormat, Transformer
from psycopg.copy import FileWriter
from psycopg.pq import Format

from hotelbot_cli.seed import server_side
from hotelbot_cli.seed.chunks import Chunk
from hotelbot_cli.seed.loader import write_rows


class Encoded:
    """A parameter already in binary form (what psycopg's dumper for its value made)."""

    __slots__ = ("data", "oid")

    def __init__(self, data: bytes, oid: int) -> None:
        self.data = data
        self.oid = oid

    def __reduce__(self) -> tuple[Any, ...]:  # crosses the pipe from the forked generator
        return Encoded, (self.data, self.oid)


class _EncodedDumper(Dumper):
    """Sends an :class:`Encoded` as it is, typed as the dumper that made it typed it."""

    format = Format.BINARY

    def get_key(self, obj: Any, format: PyFormat) -> Any:
        return (Encoded, obj.oid)

    def upgrade(self, obj: Any, format: PyFormat) -> Dumper:
        dumper = _EncodedDumper(Encoded)
        dumper.oid = obj.oid
        return dumper

    def dump(self, obj: Any) -> bytes:
        return bytes(obj.data)


def accept_encoded(cursor: Cursor[Any]) -> None:
    """Let ``cursor`` take :class:`Encoded` parameters (its own adapters: the connection's
    stay as they were)."""
    cursor.adapters.register_dumper(Encoded, _EncodedDumper)


@dataclass
class EncodedChunk:
    """What the seeding connection sends for one chunk, in the order it sends it."""

    #: table -> (rows, binary COPY stream) for hotels, triggers, guests, conversations.
    copies: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    #: The hotels' own staff notifications (COPYed after the messages and theirs).
    alerts: tuple[int, bytes] = (0, b"")
    hotel_ids: list[uuid.UUID] = field(default_factory=list)
    #: ``server_side.ROWS``' parameters for this chunk's conversations (empty: none).
    params: dict[str, Encoded] = field(default_factory=dict)


@dataclass
class CountParams:
    """After the last chunk: ``server_side.COUNTS``' parameters over every conversation."""

    params: dict[str, Encoded]


class Encoder:
    """Turns chunks into :class:`EncodedChunk` s with ``cursor``'s adapters (never its
    connection), and, with ``counts``, remembers what the sentiment counts need."""

    def __init__(self, cursor: Cursor[Any], *, counts: bool = True) -> None:
        self._cursor = cursor
        self._tx = Transformer(cursor)
        names = server_side.COUNT_PARAMS if counts else ()
        self._counted: dict[str, list[Any]] = {name: [] for name in names}

    def stream(self, table: str, rows: Iterable[Sequence[Any]]) -> tuple[int, bytes]:
        """``rows`` as one complete binary COPY stream of ``table``, and how many there are."""
        buffer = io.BytesIO()
        with Copy(self._cursor, binary=True, writer=FileWriter(buffer)) as copy:
            count = write_rows(copy, table, rows)
        return count, buffer.getvalue()

    def param(self, values: list[Any]) -> Encoded:
        dumper = self._tx.get_dumper(values, PyFormat.BINARY)
        data = dumper.dump(values)
        assert data is not None  # a list is never NULL
        return Encoded(bytes(data), dumper.oid)

    def chunk(self, chunk: Chunk) -> EncodedChunk:
        encoded = EncodedChunk(hotel_ids=[p.row.id for p in chunk.hotels])
        if chunk.hotels:
            encoded.copies["hotels"] = self.stream("hotels", (p.row for p in chunk.hotels))
            encoded.copies["triggers"] = self.stream(
                "triggers", (t for p in chunk.hotels for t in p.triggers)
            )
        encoded.copies["guests"] = self.stream("guests", chunk.guests)
        encoded.copies["conversations"] = self.stream("conversations", chunk.conversations)
        if chunk.params:
            fields = map(list, zip(*chunk.params, strict=True))
            columns = dict(zip(server_side.PARAM_NAMES, fields, strict=True))
            encoded.params = {name: self.param(columns[name]) for name in server_side.ROW_PARAMS}
            for name, values in self._counted.items():
                values.extend(columns[name])
        alerts = [p.alert for p in chunk.hotels if p.alert]
        if alerts:
            encoded.alerts = self.stream("staff_notifications", alerts)
        return encoded

    def counts(self) -> CountParams | None:
        """The sentiment counts' parameters over every chunk so far (None: no conversation,
        or not asked for)."""
        if not self._counted.get("hotel"):
            return None
        return CountParams({name: self.param(v) for name, v in self._counted.items()})


def encoded_chunks(
    chunks: Iterable[Chunk], cursor: Cursor[Any], *, counts: bool = True
) -> Iterator[Any]:
    """Every chunk encoded, then (with ``counts``, when there were conversations) a
    :class:`CountParams`."""
    encoder = Encoder(cursor, counts=counts)
    for chunk in chunks:
        yield encoder.chunk(chunk)
    last = encoder.counts()
    if last is not None:
        yield last
