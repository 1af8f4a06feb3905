"""A real PostgreSQL server for tests: initdb in a temp folder, start on a free local port, stop at the end.

Import the `pg_url` fixture from here. Missing PostgreSQL binaries FAIL the tests with a message
(`make system` installs Debian's postgresql package); they are never skipped.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

DB_NAME = "segmint_test"


def pg_bin_dir() -> Path:
    """The newest /usr/lib/postgresql/*/bin holding initdb and pg_ctl."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0,
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    pytest.fail(
        "PostgreSQL server binaries not found (no /usr/lib/postgresql/*/bin/initdb): "
        "run `make system` or `apt-get install postgresql`",
        pytrace=False,
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_pg_user(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run through `runuser -u postgres` when we are root."""
    if os.geteuid() != 0:
        return cmd
    if shutil.which("runuser") is None:
        pytest.fail(
            "running as root and `runuser` is missing: PostgreSQL cannot start as root", pytrace=False
        )
    try:
        import pwd

        pwd.getpwnam("postgres")
    except KeyError:
        pytest.fail("running as root and there is no `postgres` user to run the server as", pytrace=False)
    return ["runuser", "-u", "postgres", "--", *cmd]


def _chown_pg(path: Path) -> None:
    if os.geteuid() == 0:
        import pwd

        pw = pwd.getpwnam("postgres")
        os.chown(path, pw.pw_uid, pw.pw_gid)


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """URL of a fresh database on a PostgreSQL server started for this test session."""
    bindir = pg_bin_dir()
    root = Path(tempfile.mkdtemp(prefix="segmint-pg-"))
    root.chmod(0o755)
    _chown_pg(root)
    data = root / "data"
    port = _free_port()
    env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
    run = subprocess.run
    res = run(
        _as_pg_user(
            [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ]
        ),
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if res.returncode != 0:
        pytest.fail(f"initdb failed: {res.stderr[-2000:]}", pytrace=False)
    opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    res = run(
        _as_pg_user(
            [
                str(bindir / "pg_ctl"),
                "-D",
                str(data),
                "-o",
                opts,
                "-l",
                str(root / "log"),
                "-w",
                "-t",
                "60",
                "start",
            ]
        ),
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if res.returncode != 0:
        log = (root / "log").read_text(errors="replace") if (root / "log").exists() else ""
        pytest.fail(f"PostgreSQL did not start: {res.stderr[-1000:]} {log[-2000:]}", pytrace=False)
    try:
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres", autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {DB_NAME}")
        yield f"postgresql://postgres@127.0.0.1:{port}/{DB_NAME}"
    finally:
        run(
            _as_pg_user([str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
            capture_output=True,
            env=env,
            check=False,
        )
        shutil.rmtree(root, ignore_errors=True)
