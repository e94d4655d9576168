"""The list of every environment variable hotelbot reads, with its default and meaning.

The README's table of variables is checked against it; the variables themselves are read
by the typed accessors of the other modules of this package.
"""

from __future__ import annotations

from typing import NamedTuple


class EnvVar(NamedTuple):
    """One variable's default (as a user reads it) and what it does."""

    default: str
    meaning: str


#: Every environment variable we read, with its default and meaning (rendered in the README).
ENV_VARS: dict[str, EnvVar] = {
    "DATABASE_URL": EnvVar(
        "(embedded server)",
        "the owner's PostgreSQL URL; unset → the embedded server",
    ),
    "HOTELBOT_APP_DATABASE_URL": EnvVar(
        "(unset)",
        "the bot's own login (`hotelbot db create-login`); tenant sessions use it",
    ),
    "HOTELBOT_TENANT_KEY": EnvVar(
        "(unset)",
        "hex key that signs the tenant (secret; `db create-login` writes it to a 0600 file)",
    ),
    "HOTELBOT_TENANT_TTL": EnvVar("300", "seconds a tenant signature stays valid"),
    "HOTELBOT_PREPARE_THRESHOLD": EnvVar(
        "5 (none with HOTELBOT_POOL=null)",
        "psycopg prepare_threshold; `none` never prepares (PgBouncer < 1.21)",
    ),
    "HOTELBOT_DATA_DIR": EnvVar(
        "platformdirs user data dir", "where the embedded server keeps its data"
    ),
    "HOTELBOT_POOL": EnvVar("queue", "`queue` (pooled) or `null` (no pooling, behind PgBouncer)"),
    "HOTELBOT_POOL_SIZE": EnvVar("5", "connections kept in the pool"),
    "HOTELBOT_MAX_OVERFLOW": EnvVar("10", "extra connections allowed above the pool size"),
    "HOTELBOT_POOL_TIMEOUT": EnvVar("30", "seconds to wait for a free connection"),
    "HOTELBOT_POOL_RECYCLE": EnvVar("1800", "seconds after which a connection is replaced"),
    "HOTELBOT_POOL_PRE_PING": EnvVar(
        "true",
        "test a connection on checkout: its socket (no round trip), and a ping after 30 s idle",
    ),
    "HOTELBOT_CONNECT_TIMEOUT": EnvVar("5", "seconds to wait when opening a connection"),
    "HOTELBOT_LOCK_TIMEOUT": EnvVar("60", "seconds to wait for the migration lock"),
    "DEBUG": EnvVar(
        "false",
        "`true` echoes every SQL statement on stderr (SQLAlchemy echo, parameters hidden);"
        " values that are not booleans are ignored",
    ),
    "HOTELBOT_ENV": EnvVar("production", "`development` logs every SQL statement (JSON lines)"),
    "HOTELBOT_LOG_SQL": EnvVar("false", "`true` logs every SQL statement, as `--log-sql`"),
    "HOTELBOT_SLOW_QUERY_MS": EnvVar("100", "statements slower than this are logged at WARNING"),
    "HOTELBOT_SERVICE_NAME": EnvVar("whatsapp-hotel-bot", "`service` field of database log lines"),
    "HOTELBOT_LOG_FORMAT": EnvVar("auto", "database log format: `auto`, `json` or `text`"),
    "HOTELBOT_LOG_FILE": EnvVar("(stderr)", "append database log lines to this file"),
}
