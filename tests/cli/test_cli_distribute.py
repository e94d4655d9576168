"""`hotelbot db distribute` on a plain PostgreSQL: refused in one line, exit 1, nothing changed."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL

from hotelbot_cli import migrations


@pytest.mark.parametrize("flags", [[], ["--dry-run"], ["--json"]])
def test_distribute_refuses_a_server_without_citus(cli, db_url: URL, flags: list[str]) -> None:
    code, out, err = cli("db", "distribute", *flags, url=db_url)
    assert code == 1 and out == ""
    assert err.startswith("error: this database is not a Citus database")
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    engine = create_engine(db_url)
    with engine.connect() as conn:  # nothing changed: still local tables, still at head
        assert conn.scalar(text("SELECT count(*) FROM pg_extension WHERE extname = 'citus'")) == 0
        policies = conn.scalars(
            text("SELECT coalesce(qual, with_check) FROM pg_policies WHERE tablename = 'guests'")
        ).all()
        # one node keeps the (SELECT f()) InitPlan form: only Citus gets the bare calls
        assert policies and all("( SELECT" in p for p in policies)
    assert migrations.is_at_head(engine)
    engine.dispose()
