"""First use of the embedded server: concurrent starts, PG* variables, bad data directories."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hotelbot_cli import embedded

pytestmark = pytest.mark.slow


def _hotelbot(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "hotelbot_cli", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture(scope="module")
def fresh_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    pgdata = tmp_path_factory.mktemp("first-use") / "pgdata"
    yield pgdata
    embedded.stop(pgdata)


def _env(pgdata: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(HOTELBOT_DATA_DIR=str(pgdata), **extra)
    return env


#: A shell set up for some other PostgreSQL: none of it may reach the embedded server.
FOREIGN_PG_ENV = {
    "PGPORT": "6543",
    "PGDATABASE": "not_ours",
    "PGUSER": "nobody_here",
    "PGOPTIONS": "-c search_path=nowhere",
    "PGHOSTADDR": "192.0.2.1",
    "PGSSLMODE": "require",
}


def test_two_first_commands_at_once_with_a_foreign_pg_environment(fresh_dir: Path) -> None:
    env = _env(fresh_dir, **FOREIGN_PG_ENV)
    procs = [_hotelbot("db", "upgrade", env=env) for _ in range(3)]
    results = [(p.wait(timeout=240), *p.communicate()) for p in procs]
    for code, out, err in results:
        assert code == 0, err
        assert "duplicate key" not in err
    code, out, err = (p := _hotelbot("db", "current", env=env)).wait(timeout=60), *p.communicate()
    assert code == 0 and "(head)" in out, err
    url = embedded.url(fresh_dir)
    assert url is not None and "port=5432" in url  # explicit: PGPORT cannot move it


def test_pgport_in_the_shell_after_the_server_started(fresh_dir: Path) -> None:
    embedded.start(fresh_dir)  # started without PG* (the previous test may have done it)
    env = _env(fresh_dir, PGPORT="5999")
    proc = _hotelbot("db", "current", env=env)
    code, out, err = proc.wait(timeout=60), *proc.communicate()
    assert code == 0 and "(head)" in out, err


def _readme_cleanup() -> list[str]:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = readme.split("**Cleaning up.**", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    return [line.split("#", 1)[0].strip() for line in block.splitlines() if line.strip()]


def test_the_readme_cleanup_steps_leave_nothing_behind(fresh_dir: Path) -> None:
    """Run after the tests above on the same data dir: seed, bench, then the README's steps."""
    import shutil

    env = _env(fresh_dir)

    def hotelbot(*args: str) -> str:
        proc = _hotelbot(*args, env=env)
        code, out, err = proc.wait(timeout=240), *proc.communicate()
        assert code == 0, (args, err)
        return out

    hotelbot("db", "upgrade")
    hotelbot("seed", "--hotels", "2", "--guests-per-hotel", "5", "-q")
    hotelbot("bench", "--iterations", "40", "--no-reference", "--no-isolation", "--no-explain")
    steps = _readme_cleanup()
    assert steps[0].startswith("hotelbot seed") and steps[-1].startswith("rm -rf")
    for step in steps[:-1]:
        words = step.split()[1:]
        if words[0] == "seed":  # the README's size; a small one is enough to prove the step
            words = [*words, "--hotels", "2", "--guests-per-hotel", "5", "-q"]
            words.remove("50")
            words.remove("--hotels")
        hotelbot(*words)
        if words[:2] == ["db", "downgrade"]:
            assert hotelbot("db", "current").strip() == "base (empty)"
    shutil.rmtree(fresh_dir)  # rm -rf the data dir and its lock file
    (fresh_dir.parent / f".{fresh_dir.name}.lock").unlink()
    assert list(fresh_dir.parent.iterdir()) == []
    proc = _hotelbot("server", "status", "--json", env=env)
    code, out, _ = proc.wait(timeout=60), *proc.communicate()
    assert code == 1 and '"initialized": false' in out  # not running: exit 1


def _one_line_error(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    proc = _hotelbot(*args, env=env)
    code, out, err = proc.wait(timeout=60), *proc.communicate()
    assert out == ""
    assert len(err.strip().splitlines()) == 1, err
    return code, err


def test_a_data_dir_that_is_a_file(tmp_path: Path) -> None:
    target = tmp_path / "pgdata"
    target.write_text("not a directory")
    code, err = _one_line_error(["db", "current"], _env(target))
    assert code == 2 and "is a file" in err and "HOTELBOT_DATA_DIR" in err


def test_a_data_dir_with_other_files_is_not_taken_over(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    code, err = _one_line_error(["server", "start"], _env(tmp_path))
    assert code == 2 and "not empty" in err
    assert (tmp_path / "notes.txt").read_text() == "mine"


@pytest.mark.skipif(os.name != "posix" or os.geteuid() != 0, reason="root only")
def test_as_root_an_existing_folder_keeps_its_owner(tmp_path: Path) -> None:
    folder = tmp_path / "existing"
    folder.mkdir()
    owner = folder.stat().st_uid
    code, err = _one_line_error(["server", "start"], _env(folder))
    assert code == 2 and "take" in err and "over" in err
    assert folder.stat().st_uid == owner


def test_other_start_failures_say_why_in_one_line(tmp_path: Path) -> None:
    pgdata = tmp_path / "pgdata"
    pgdata.mkdir()
    (pgdata / "PG_VERSION").write_text("18\n")  # looks initialised, is not
    if os.name == "posix" and os.geteuid() == 0:
        import pwd

        info = pwd.getpwnam(embedded.SERVER_USER)
        os.chown(pgdata, info.pw_uid, info.pw_gid)
    code, err = _one_line_error(["server", "start"], _env(pgdata))
    assert code == 3 and "could not start the embedded PostgreSQL" in err
    assert not err.rstrip().endswith("CalledProcessError")  # a reason, not only a class name
