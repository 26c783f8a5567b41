"""A real PostgreSQL primary with a streaming hot standby, private to the tests that ask for one.

The machine's own server cannot be given a standby (its pg_hba.conf admits no replication
connection, and it is not ours to reconfigure), so this starts a cluster of its own with the same
PostgreSQL binaries: `initdb`, a primary on a free port, `pg_basebackup -R` for the standby on
another, both in a temporary directory removed afterwards (about 1.5 s). PostgreSQL refuses to
run as root; as root the servers run as the `postgres` user. Missing binaries fail the test that
asked, they never skip it.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, text

SERVER_USER = "postgres"
"""Who runs the servers when the tests run as root."""


def _bin_dir() -> Path:
    found = shutil.which("initdb") or shutil.which("pg_ctl")
    if found is not None:
        return Path(os.path.realpath(found)).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not versions:
        raise RuntimeError("no PostgreSQL server binaries (initdb) on PATH or in /usr/lib/postgresql")
    return Path(versions[-1]).parent


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class ReplicatedServer:
    """The primary and its standby, and the switches the tests need."""

    directory: Path
    primary_port: int
    standby_port: int

    def url(self, port: int, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{port}/{database}"

    def primary_url(self, database: str) -> str:
        return self.url(self.primary_port, database)

    def standby_url(self, database: str) -> str:
        return self.url(self.standby_port, database)

    def sql(self, port: int, statement: str) -> object:
        engine = create_engine(self.url(port, "postgres"), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                result = connection.execute(text(statement))
                return result.scalar() if result.returns_rows else None
        finally:
            engine.dispose()

    def create_database(self, name: str) -> None:
        self.sql(self.primary_port, f'CREATE DATABASE "{name}"')

    def caught_up(self) -> bool:
        """Has the standby replayed everything the primary wrote so far?"""
        written = self.sql(self.primary_port, "SELECT pg_current_wal_lsn()::text")
        replayed = self.sql(self.standby_port, f"SELECT pg_last_wal_replay_lsn() >= '{written}'::pg_lsn")
        return replayed is True

    def wait_caught_up(self, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while not self.caught_up():
            if time.monotonic() > deadline:
                raise TimeoutError(f"the standby did not catch up within {timeout_s} s")
            time.sleep(0.05)

    def pause_replay(self) -> None:
        """The standby stops applying what it receives: it answers, from the past."""
        self.sql(self.standby_port, "SELECT pg_wal_replay_pause()")

    def resume_replay(self) -> None:
        self.sql(self.standby_port, "SELECT pg_wal_replay_resume()")

    def stop_standby(self) -> None:
        _pg_ctl(self.directory / "standby", "stop", "-m", "fast")

    def start_standby(self) -> None:
        _pg_ctl(self.directory / "standby", "start", "-l", str(self.directory / "standby.log"))


def _as_server_user(command: list[str]) -> list[str]:
    return ["runuser", "-u", SERVER_USER, "--", *command] if os.geteuid() == 0 else command


def _run(command: list[str]) -> None:
    done = subprocess.run(_as_server_user(command), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {done.stderr.strip() or done.stdout.strip()}")


def _pg_ctl(data: Path, *arguments: str) -> None:
    _run([str(_bin_dir() / "pg_ctl"), "-D", str(data), "-w", *arguments])


@contextmanager
def replicated_server() -> Iterator[ReplicatedServer]:
    directory = Path(tempfile.mkdtemp(prefix="provenance-pg-"))
    if os.geteuid() == 0:
        shutil.chown(directory, SERVER_USER)
    server = ReplicatedServer(directory, _free_port(), _free_port())
    primary, standby = directory / "primary", directory / "standby"
    bin_dir = _bin_dir()
    started: list[Path] = []
    try:
        _run([str(bin_dir / "initdb"), "-D", str(primary), "-A", "trust", "-U", "postgres", "--no-sync"])
        with open(primary / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write(
                f"port = {server.primary_port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{directory}'\nfsync = off\n"
                "hot_standby_feedback = on\n"
            )
        with open(primary / "pg_hba.conf", "a", encoding="utf-8") as hba:
            hba.write("host replication all 127.0.0.1/32 trust\n")
        _pg_ctl(primary, "start", "-l", str(directory / "primary.log"))
        started.append(primary)
        _run(
            [
                str(bin_dir / "pg_basebackup"),
                *("-h", "127.0.0.1", "-p", str(server.primary_port), "-U", "postgres"),
                *("-D", str(standby), "-R", "-X", "stream"),
            ]
        )
        with open(standby / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write(f"port = {server.standby_port}\n")
        server.start_standby()
        started.append(standby)
        yield server
    finally:
        for data in reversed(started):
            with contextlib.suppress(RuntimeError):  # stopped by the test already
                _pg_ctl(data, "stop", "-m", "immediate")
        shutil.rmtree(directory, ignore_errors=True)
