"""``hotelbot db lint``: lock safety and reversibility of revisions, before they reach production.

Each revision's offline upgrade SQL (what ``hotelbot db sql DOWN:REV`` prints) goes through
squawk (``squawk-cli``: the PostgreSQL migration linter), plus the checks squawk lacks and
this project needs:

- ``unbatched-update``: an UPDATE/DELETE of an existing table in one statement, DO blocks
  included (squawk does not look inside them): one long transaction that locks every
  matching row and doubles the heap. Use ``migration_steps.backfill``.
- ``table-rewrite``: ALTER COLUMN … TYPE, SET LOGGED/UNLOGGED, a volatile DEFAULT, VACUUM
  FULL, CLUSTER: the table is rewritten under ACCESS EXCLUSIVE.
- ``missing-lock-timeout``: a statement that locks an existing table in a transaction that
  set no ``lock_timeout`` (applied with psql or plain Alembic it could queue the bot).
- ``irreversible``: the upgrade does something and the downgrade nothing.

Ignores live in ``pyproject.toml`` (``[tool.hotelbot.lint]``), each with its reason. Given
an engine, findings name the table's live size ("messages, 1.2 GB, ~1,000,000 rows").
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hotelbot_cli.errors import CheckFailed, ConfigError, UsageError

if TYPE_CHECKING:
    from sqlalchemy import Engine

#: Lock each of our own rules stands for, for the message.
_LOCKS = {
    "unbatched-update": "ROW EXCLUSIVE and a lock on every matching row, in one transaction",
    "table-rewrite": "ACCESS EXCLUSIVE while the table is rewritten",
    "missing-lock-timeout": "a lock with no lock_timeout: the bot's statements queue behind it",
}


@dataclass(frozen=True)
class Finding:
    revision: str
    rule: str
    message: str
    line: int
    statement: str
    source: str  # "squawk" or "hotelbot"
    table: str | None = None
    ignored: str | None = None  # the reason, when pyproject.toml ignores it


@dataclass(frozen=True)
class LintReport:
    revisions: tuple[str, ...]
    findings: tuple[Finding, ...] = ()
    ignored: tuple[Finding, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.findings

    def failure(self) -> CheckFailed | None:
        """The verdict of ``db lint``: a finding not ignored in pyproject.toml fails it."""
        if self.ok:
            return None
        revisions = sorted({f.revision for f in self.findings})
        rules = sorted({f.rule for f in self.findings})
        return CheckFailed(
            f"{len(self.findings)} lint finding(s) in revision(s) {', '.join(revisions)}:"
            f" {', '.join(rules)}",
            "make the migration lock-safe, or ignore the rule with a reason in pyproject.toml",
        )


@dataclass(frozen=True)
class LintConfig:
    """``[tool.hotelbot.lint]``: squawk rules excluded project-wide, and per-revision ignores."""

    pg_version: str = "15"
    exclude: dict[str, str] = field(default_factory=dict)  # rule -> reason
    ignore: tuple[tuple[str, str, str], ...] = ()  # (revision, rule, reason)

    @classmethod
    def load(cls, path: Path | None = None) -> LintConfig:
        import tomllib

        from hotelbot_cli.migrations import scripts

        if path is None:  # the checkout holding the scripts, else the working directory
            candidates = [
                scripts.script_location().parent / "pyproject.toml",
                Path.cwd() / "pyproject.toml",
            ]
            path = next((c for c in candidates if c.is_file()), candidates[0])
        if not path.is_file():
            return cls()
        section = tomllib.loads(path.read_text()).get("tool", {}).get("hotelbot", {})
        raw = section.get("lint", {})
        try:
            exclude = {e["rule"]: e["reason"] for e in raw.get("exclude", [])}
            ignore = tuple(
                (str(i["revision"]), i["rule"], i["reason"]) for i in raw.get("ignore", [])
            )
        except (KeyError, TypeError) as exc:
            raise ConfigError(
                f"{path}: [tool.hotelbot.lint] entries need rule and reason ({exc})"
            ) from None
        if any(not r.strip() for r in [*exclude.values(), *(i[2] for i in ignore)]):
            raise ConfigError(f"{path}: every lint exclude/ignore needs a reason")
        return cls(pg_version=str(raw.get("pg-version", "15")), exclude=exclude, ignore=ignore)

    def reason(self, finding: Finding) -> str | None:
        for revision, rule, why in self.ignore:
            if revision == finding.revision and rule == finding.rule:
                return why
        return None


def squawk_binary() -> str:
    """The squawk executable (``squawk-cli`` installs it next to this Python)."""
    beside = Path(sys.executable).parent / "squawk"
    found = str(beside) if beside.is_file() else shutil.which("squawk")
    if found is None:
        raise ConfigError("squawk is not installed", "pip install squawk-cli")
    return found


# -- statements ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Statement:
    sql: str
    line: int
    batched: bool  # preceded by migration_steps.BATCHED_MARKER


_DOLLAR = re.compile(r"\$\w*\$")


def split_statements(sql: str) -> list[Statement]:
    """Alembic's offline SQL: statements end with ``;`` at a line end, outside $$ bodies."""
    from hotelbot_cli.migration_steps import BATCHED_MARKER

    statements: list[Statement] = []
    current: list[str] = []
    start = 0
    batched = False
    dollar: str | None = None  # the open $tag$ of a dollar-quoted body
    for number, line in enumerate(sql.splitlines(), start=1):
        stripped = line.strip()
        if not current:
            if not stripped:
                continue
            if stripped.startswith("--"):
                batched = batched or stripped.startswith(BATCHED_MARKER)
                continue
            start = number
        current.append(line)
        for tag in _DOLLAR.findall(line):
            if dollar is None:
                dollar = tag
            elif tag == dollar:
                dollar = None
        if stripped.endswith(";") and dollar is None:
            statements.append(Statement("\n".join(current).strip().rstrip(";"), start, batched))
            current, batched = [], False
    return statements


_TABLE = re.compile(
    r"\b(?:ALTER\s+TABLE(?:\s+ONLY)?|UPDATE|DELETE\s+FROM|ON|LOCK\s+TABLE|TRUNCATE|CLUSTER|"
    r"VACUUM\s+FULL|DROP\s+TABLE|CREATE\s+TABLE(?:\s+IF\s+NOT\s+EXISTS)?|REFERENCES)"
    r"\s+(?:IF\s+EXISTS\s+)?(?P<table>[\w.\"]+)",
    re.IGNORECASE,
)
_LOCKING = re.compile(
    r"^\s*(ALTER\s+TABLE|CREATE\s+(UNIQUE\s+)?INDEX\s+(?!CONCURRENTLY)|DROP\s+INDEX\s+(?!CONCURRENTLY)"
    r"|CREATE\s+(OR\s+REPLACE\s+)?TRIGGER|DROP\s+TRIGGER|CREATE\s+POLICY|DROP\s+POLICY"
    r"|LOCK\s+TABLE|TRUNCATE|DROP\s+TABLE|REINDEX|UPDATE|DELETE)",
    re.IGNORECASE,
)
_REWRITE = re.compile(
    r"ALTER\s+COLUMN\s+\w+\s+(SET\s+DATA\s+)?TYPE|SET\s+(UN)?LOGGED|^\s*VACUUM\s+FULL|^\s*CLUSTER"
    r"|ADD\s+COLUMN[^,;]*DEFAULT\s+[^,;]*(random|gen_random_uuid|clock_timestamp|uuid_generate)"
    r"|GENERATED\s+ALWAYS\s+AS\s*\(.*\)\s*STORED",
    re.IGNORECASE | re.DOTALL,
)
_DML = re.compile(r"(?:^|\bBEGIN\b|;)\s*(UPDATE\s+(?P<u>\w+)|DELETE\s+FROM\s+(?P<d>\w+))", re.I)


def _tables(sql: str) -> list[str]:
    return [m["table"].strip('"').split(".")[-1].lower() for m in _TABLE.finditer(sql)]


def own_checks(revision: str, sql: str) -> list[Finding]:
    """The checks squawk lacks (see the module docstring)."""
    findings: list[Finding] = []
    created: set[str] = set()
    timeout = False
    for st in split_statements(sql):
        text_ = st.sql
        head = text_.lstrip().upper()
        if head.startswith(("BEGIN", "COMMIT")):
            timeout = False
            continue
        if re.match(r"SET\s+(LOCAL\s+)?LOCK_TIMEOUT", head):
            timeout = True
            continue
        if head.startswith("CREATE TABLE"):
            created.update(_tables(text_)[:1])
            continue
        tables = [t for t in _tables(text_) if t not in created and t != "alembic_version"]
        if not tables:
            continue
        table = tables[0]

        def add(rule: str, message: str, table: str = table, st: Statement = st) -> None:
            findings.append(
                Finding(revision, rule, message, st.line, _short(st.sql), "hotelbot", table)
            )

        for match in _DML.finditer(text_):
            target = (match["u"] or match["d"]).lower()
            if target not in created and not st.batched:
                add(
                    "unbatched-update",
                    f"{match[1].split()[0].upper()} of {target} in one statement"
                    " (use migration_steps.backfill: batches in short transactions)",
                    target,
                )
        if _REWRITE.search(text_):
            add("table-rewrite", f"rewrites {table} under ACCESS EXCLUSIVE")
        if _LOCKING.match(text_) and not timeout:
            add(
                "missing-lock-timeout",
                f"locks {table} with no lock_timeout set in this transaction"
                " (call migration_steps.lock_timeout() first)",
            )
            timeout = True  # once per transaction
    return findings


def _short(sql: str) -> str:
    one = " ".join(sql.split())
    return one if len(one) <= 120 else one[:117] + "..."


def squawk_findings(revision: str, sql: str, config: LintConfig) -> list[Finding]:
    """squawk's findings for one revision's SQL (its JSON reporter)."""
    statements = split_statements(sql)
    with tempfile.TemporaryDirectory(prefix="hotelbot-lint-") as tmp:
        path = Path(tmp) / f"{revision}.sql"
        path.write_text(sql)
        argv = [squawk_binary(), "--reporter", "json", "--pg-version", config.pg_version]
        if config.exclude:
            argv.append("--exclude=" + ",".join(sorted(config.exclude)))
        done = subprocess.run([*argv, str(path)], capture_output=True, text=True, check=False)
    try:
        raw: list[dict[str, Any]] = json.loads(done.stdout or "[]")
    except json.JSONDecodeError:
        raise ConfigError(
            f"squawk failed on {revision}: {(done.stderr or done.stdout).strip()[:200]}"
        ) from None
    findings = []
    for item in raw:
        line = int(item.get("line", 0)) + 1
        statement = next((s for s in reversed(statements) if s.line <= line), None)
        sql_text = statement.sql if statement else ""
        tables = _tables(sql_text)
        findings.append(
            Finding(
                revision,
                str(item.get("rule_name")),
                str(item.get("message", "")).strip(),
                line,
                _short(sql_text),
                "squawk",
                tables[0] if tables else None,
            )
        )
    return findings


_BOOKKEEPING = re.compile(
    r"\s*(BEGIN|COMMIT|SET\s|(UPDATE|DELETE\s+FROM|DROP\s+TABLE)\s+alembic_version)", re.I
)


def _work(sql: str) -> list[Statement]:
    return [s for s in split_statements(sql) if not _BOOKKEEPING.match(s.sql)]


def irreversible(revision: str, down_sql: str, up_sql: str = "SELECT 1;") -> list[Finding]:
    """The upgrade does something and the downgrade nothing."""
    if _work(down_sql) or not _work(up_sql):
        return []
    return [Finding(revision, "irreversible", "the downgrade undoes nothing", 0, "", "hotelbot")]


def table_sizes(engine: Engine, tables: set[str]) -> dict[str, tuple[int, int]]:
    """table -> (total bytes, estimated rows) in the live database."""
    from sqlalchemy import text

    if not tables:
        return {}
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT c.relname, pg_total_relation_size(c.oid), greatest(c.reltuples, 0)::bigint"
                " FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace"
                " AND c.relkind IN ('r', 'p') AND c.relname = ANY(:names)"
            ),
            {"names": sorted(tables)},
        )
        return {r[0]: (int(r[1]), int(r[2])) for r in rows}


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"  # pragma: no cover


def _with_size(finding: Finding, sizes: dict[str, tuple[int, int]]) -> Finding:
    if finding.table is None or finding.table not in sizes:
        return finding
    size, rows = sizes[finding.table]
    lock = _LOCKS.get(finding.rule)
    live = f"{finding.table}, {_human(size)}, ~{rows:,} rows" + (f", under {lock}" if lock else "")
    return replace(finding, message=f"{finding.message} [{live}]")


def lint(
    revisions: Sequence[str] = (),
    engine: Engine | None = None,
    config: LintConfig | None = None,
) -> LintReport:
    """Lint ``revisions`` (default: every one) and return the findings, ignored ones apart."""
    from hotelbot_cli import migrations

    config = config or LintConfig.load()
    known = {r.revision: r for r in migrations.history()}
    chosen = list(revisions) or sorted(known)
    unknown = [r for r in chosen if r not in known]
    if unknown:
        raise UsageError(
            f"unknown revision {', '.join(unknown)}", "see `hotelbot db history` for valid ids"
        )
    findings: list[Finding] = []
    for rev in chosen:
        down = known[rev].down_revision or "base"
        up_sql = migrations.offline_sql(f"{down}:{rev}")
        down_sql = migrations.offline_sql(f"{rev}:{down}")
        findings += squawk_findings(rev, up_sql, config)
        findings += own_checks(rev, up_sql)
        findings += irreversible(rev, down_sql, up_sql)
    if engine is not None:
        sizes = table_sizes(engine, {f.table for f in findings if f.table})
        findings = [_with_size(f, sizes) for f in findings]
    marked = [replace(f, ignored=config.reason(f)) for f in findings]
    return LintReport(
        revisions=tuple(chosen),
        findings=tuple(f for f in marked if f.ignored is None),
        ignored=tuple(f for f in marked if f.ignored is not None),
    )
