"""The report's versioned JSON document: written, read back, and its JSON Schema.

The JSON document is ``{"schema_version": 2, "tool": "hotelbot bench", ...}`` (hotelbot's
one envelope, :mod:`hotelbot_cli.envelope`); its JSON Schema is ``report.schema.json``
beside this module. Reports saved before the envelope, ``{"format": "hotelbot.bench",
"version": 1, ...}``, are still read (same fields); a newer version is refused rather
than misread.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from hotelbot_cli import envelope
from hotelbot_cli.bench.explain import IndexCheck
from hotelbot_cli.bench.reference import Reference
from hotelbot_cli.bench.report import BenchReport, DbCounters, IsolationRow, OpStats, PoolStats
from hotelbot_cli.errors import UsageError

#: The shape of the report: 2 is version 1's fields under the schema_version/tool envelope.
VERSION = 2
#: What marked a report before the envelope; ``--compare`` still reads such baselines.
LEGACY_ENVELOPE = {"format": "hotelbot.bench", "version": 1}
SCHEMA_PATH = Path(__file__).with_name("report.schema.json")


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, DbCounters):
            out["cache_hit_ratio"] = value.cache_hit_ratio
        return out
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def to_dict(report: BenchReport) -> dict[str, Any]:
    """The versioned JSON document of ``report``."""
    return envelope.wrap("bench", _plain(report), VERSION)


def jsonable(value: Any) -> Any:
    """Dataclasses (changes, threshold results) as plain JSON values."""
    return _plain(value)


def _build(cls: type, data: dict[str, Any]) -> Any:
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {k: v for k, v in data.items() if k in names}
    for f in dataclasses.fields(cls):
        if f.type in ("tuple[str, ...]",) and f.name in kwargs:
            kwargs[f.name] = tuple(kwargs[f.name])
    return cls(**kwargs)


def from_dict(data: dict[str, Any]) -> BenchReport:
    """Read a document written by :func:`to_dict` (this or an older minor shape)."""
    envelope.read(
        data,
        "bench",
        VERSION,
        legacy=LEGACY_ENVELOPE,
        hint="write one with `hotelbot bench --json`",
    )
    try:
        return BenchReport(
            started_at=data["started_at"],
            settings=dict(data.get("settings") or {}),
            dataset={k: int(v) for k, v in (data.get("dataset") or {}).items()},
            operations=[_build(OpStats, o) for o in data["operations"]],
            pool=_build(PoolStats, data["pool"]) if data.get("pool") else None,
            elapsed_s=float(data["elapsed_s"]),
            total_ops=int(data["total_ops"]),
            isolation=[_build(IsolationRow, r) for r in data.get("isolation") or []],
            index_checks=[_build(IndexCheck, c) for c in data.get("index_checks") or []],
            db=_build(DbCounters, data["db"]) if data.get("db") else None,
            references=[_build(Reference, r) for r in data.get("references") or []],
            server_version=str(data.get("server_version") or ""),
            notes=list(data.get("notes") or []),
            isolation_skipped=data.get("isolation_skipped"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"malformed bench report: {exc}") from None


def load(path: str | Path) -> BenchReport:
    """Read a report file written with ``--json``/``--output``."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path} is not JSON: {exc.msg} at line {exc.lineno}") from None
    return from_dict(data)


def dumps(report: BenchReport) -> str:
    return json.dumps(to_dict(report), indent=2) + "\n"


def schema() -> dict[str, Any]:
    """The JSON Schema of the report document."""
    loaded: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return loaded
