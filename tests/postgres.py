"""A throwaway PostgreSQL server for the test session, from the machine's own binaries."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psycopg


def _find_binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(candidate)
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """initdb + pg_ctl in a temporary folder; PostgreSQL refuses to run as root, so when the
    tests run as root the server runs as the `postgres` system user."""

    def __init__(self) -> None:
        self.initdb = _find_binary("initdb")
        self.pg_ctl = _find_binary("pg_ctl")
        self.port = _free_port()
        self.workdir = Path(tempfile.mkdtemp(prefix="educonnect-pg-"))
        self.datadir = self.workdir / "data"
        self._demote: Callable[[], None] | None = None

    @property
    def unavailable_reason(self) -> str | None:
        if not self.initdb or not self.pg_ctl:
            return "PostgreSQL binaries (initdb, pg_ctl) are not installed on this machine"
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                return "running as root and there is no 'postgres' user to run PostgreSQL as"
        return None

    def _run(self, *args: str) -> None:
        subprocess.run(
            args, check=True, capture_output=True, preexec_fn=self._demote, cwd=self.workdir
        )

    def start(self) -> str:
        """Start the server; returns a SQLAlchemy URL to its `postgres` database."""
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.workdir, user.pw_uid, user.pw_gid)

            def demote() -> None:
                os.setgid(user.pw_gid)
                os.setuid(user.pw_uid)

            self._demote = demote
        assert self.initdb and self.pg_ctl
        self._run(
            self.initdb,
            "-D",
            str(self.datadir),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
        )
        self._run(
            self.pg_ctl,
            "-D",
            str(self.datadir),
            "-o",
            self._options,
            "-l",
            str(self.workdir / "server.log"),
            "-w",
            "-t",
            "60",
            "start",
        )
        return self.url("postgres")

    @property
    def _options(self) -> str:
        return (
            f"-p {self.port} -k {self.workdir} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=100"
        )

    def restart(self) -> None:
        """`pg_ctl restart -m fast`, as an operator restarts it: every session is cut, open
        transactions roll back, and the server accepts connections again once this returns."""
        assert self.pg_ctl
        self._run(
            self.pg_ctl,
            "-D",
            str(self.datadir),
            "-o",
            self._options,
            "-l",
            str(self.workdir / "server.log"),
            "-m",
            "fast",
            "-w",
            "-t",
            "60",
            "restart",
        )

    def create_database(self, name: str, *, template: str | None = None) -> str:
        """A fresh database, empty or a copy of `template` (file by file: far quicker than
        migrating each one); returns its SQLAlchemy URL."""
        copy = f' TEMPLATE "{template}" STRATEGY FILE_COPY' if template else ""
        with psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"{copy}')
        return self.url(name)

    def url(self, name: str) -> str:
        """The SQLAlchemy URL of one of the server's databases."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def empty_database(self, name: str) -> None:
        """Bring a database copied from a migrated template back to its empty state, in place:
        every connection to it cut, every table that has rows truncated (the schema's version
        kept), every sequence restarted. ≈ 20 ms where a new copy takes 350 ms (creating a
        database from a template checkpoints the whole server)."""
        with psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname=name, autocommit=True
        ) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            tables = [
                row[0]
                for row in conn.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                    " AND tablename <> 'alembic_version'"
                )
            ]
            probe = " UNION ALL ".join(
                f"SELECT '{table}' WHERE EXISTS (SELECT 1 FROM \"{table}\")" for table in tables
            )
            filled = [row[0] for row in conn.execute(probe)] if tables else []
            sequences = [
                row[0]
                for row in conn.execute(
                    "SELECT format('%I.%I', schemaname, sequencename) FROM pg_sequences"
                    " WHERE last_value IS NOT NULL"
                )
            ]
            with conn.transaction():
                # TRUNCATE, not DELETE: a table a large test filled would keep its pages (and
                # the planner its size) until a vacuum, and every later scan would read them.
                if filled:
                    tables = ", ".join(f'"{table}"' for table in filled)
                    conn.execute(f"TRUNCATE {tables} CASCADE")
                for sequence in sequences:
                    conn.execute(f"ALTER SEQUENCE {sequence} RESTART")

    def drop_database(self, name: str) -> None:
        """Delete a test's database (its connections closed first): hundreds of copies left
        to the end of the session made stopping the server take minutes of file deletion."""
        with psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        if self.pg_ctl and self.datadir.exists():
            for _ in range(3):
                try:
                    # Immediate: the folder is deleted next, no checkpoint is worth waiting for.
                    self._run(self.pg_ctl, "-D", str(self.datadir), "-m", "immediate", "-w", "stop")
                    break
                except subprocess.CalledProcessError:
                    time.sleep(0.5)
        shutil.rmtree(self.workdir, ignore_errors=True)
