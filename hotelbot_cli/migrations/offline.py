"""SQL of a revision range for review, without a database (``hotelbot db sql FROM:TO``).

``db lint`` lints this SQL and ``db downgrade`` reads what it would drop from it.
"""

from __future__ import annotations

import io

from hotelbot_cli.errors import UsageError
from hotelbot_cli.migrations.scripts import make_config, script_directory


def offline_sql(revision_range: str) -> str:
    """SQL for ``FROM:TO`` (either direction) for review, without a database."""
    from alembic.util import CommandError

    from alembic import command

    if ":" not in revision_range:
        raise UsageError(f"{revision_range!r} is not a range", "use FROM:TO, e.g. base:head")
    start, end = revision_range.split(":", 1)
    config = make_config(url="postgresql+psycopg://")
    relative = relative_steps(end)
    if relative is not None:
        verb = "upgrade" if relative > 0 else "downgrade"
    else:
        verb = "upgrade" if _is_upgrade(start or "base", end or "head") else "downgrade"
    try:
        getattr(command, verb)(config, f"{start or 'base'}:{end or 'head'}", sql=True)
    except CommandError as exc:
        raise UsageError(str(exc), "see `hotelbot db history` for valid revisions") from None
    buffer = config.output_buffer
    assert isinstance(buffer, io.StringIO)
    return buffer.getvalue()


def relative_steps(revision: str) -> int | None:
    """``-1`` → -1, ``+2`` / ``ae10+2`` → 2 (Alembic's relative revisions); None when absolute."""
    import re

    found = re.fullmatch(r"(?:[^@\s]+@)?\w*([+-]\d+)", revision.strip())
    return int(found.group(1)) if found else None


def _is_upgrade(start: str, end: str) -> bool:
    """True when ``end`` is ``start`` or one of its descendants."""
    from alembic.script.revision import RevisionError
    from alembic.util import CommandError

    script = script_directory()
    if start == "base" or end in {"head", "heads"}:
        return True
    if end == "base" or start in {"head", "heads"}:
        return False
    try:
        lower = script.get_revision(start)
        upper = script.get_revision(end)
    except (RevisionError, CommandError) as exc:
        raise UsageError(str(exc), "see `hotelbot db history` for valid revisions") from None
    if lower is None or upper is None:  # pragma: no cover - alembic raises first
        raise UsageError(f"unknown revision in {start}:{end}")
    ancestors = {r.revision for r in script.iterate_revisions(upper.revision, "base")}
    return lower.revision in ancestors
