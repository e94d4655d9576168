"""pytest-alembic's built-in tests on our history: single head, upgrade, model/DDL match, up/down.

Its plugin is disabled (``-p no:pytest_alembic`` in pyproject.toml: the collector behind
``--test-alembic`` breaks under pytest 9), so the built-in tests and its ``alembic_runner``
fixture are imported here, and run against a real, empty PostgreSQL database. They hand
env.py an ``Engine`` in ``config.attributes["connection"]``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pytest_alembic.plugin.fixtures import alembic_runner
from pytest_alembic.tests import (
    test_model_definitions_match_ddl,
    test_single_head_revision,
    test_up_down_consistency,
    test_upgrade,
)
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

from hotelbot_cli import migrations

__all__ = [
    "alembic_runner",
    "test_model_definitions_match_ddl",
    "test_single_head_revision",
    "test_up_down_consistency",
    "test_upgrade",
]


@pytest.fixture
def alembic_config():  # type: ignore[no-untyped-def]
    """The same Alembic configuration ``hotelbot db …`` uses."""
    return migrations.make_config()


@pytest.fixture
def alembic_engine(empty_db_url: URL) -> Iterator[Engine]:
    engine = create_engine(empty_db_url, poolclass=NullPool)
    yield engine
    engine.dispose()


def test_the_runner_migrates_through_an_engine(alembic_runner, alembic_engine: Engine) -> None:
    """The built-in tests only pass when env.py accepts the Engine they hand over."""
    alembic_runner.migrate_up_to("heads")
    assert migrations.current(alembic_engine) == migrations.heads()
