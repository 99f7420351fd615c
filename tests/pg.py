"""A throwaway PostgreSQL server for the tests: initdb in a temp dir, started on a free port, stopped at the end.

initdb refuses to run as root, so as root it runs as the `postgres` user (Debian's `postgresql` package makes
it; `scripts/install-system-deps.sh` installs the package). Where no server can start, `PgServer.start` raises
`PgUnavailable` with the reason, and the tests that need one are skipped with it.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path


class PgUnavailable(RuntimeError):
    """No PostgreSQL server can be started here (the message says why)."""


def _binary(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    path = found[-1] if found else shutil.which(name)
    if path is None:
        raise PgUnavailable(f"no {name} (install PostgreSQL: bash scripts/install-system-deps.sh)")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PgServer:
    """One running server; `url(db)` is a libpq URL over its Unix socket."""

    root: Path
    port: int
    run_as: list[str]

    @classmethod
    def start(cls, fast: bool = True) -> PgServer:
        """initdb + pg_ctl start in a new temp dir. `fast`: no fsync (tests; the benchmark measures with it)."""
        try:
            import psycopg  # noqa: F401
        except ImportError as e:
            raise PgUnavailable(f"psycopg is not installed ({e}): pip install 'prefrl[postgres]'") from None
        initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
        root = Path(tempfile.mkdtemp(prefix="prefrl-pg-"))
        run_as: list[str] = []
        if os.geteuid() == 0:
            try:
                user = pwd.getpwnam("postgres")
            except KeyError:
                raise PgUnavailable("running as root and there is no `postgres` user for initdb") from None
            os.chown(root, user.pw_uid, user.pw_gid)
            run_as = ["runuser", "-u", "postgres", "--"]
        server = cls(root, _free_port(), run_as)
        data = root / "data"
        opts = f"-p {server.port} -k {root} -c listen_addresses='' -c max_connections=200"
        if fast:
            opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        for cmd in ([initdb, "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"],
                    [pg_ctl, "-D", str(data), "-o", opts, "-l", str(root / "log"), "-w", "start"]):
            done = subprocess.run(run_as + cmd, capture_output=True, text=True)
            if done.returncode != 0:
                shutil.rmtree(root, ignore_errors=True)
                raise PgUnavailable(f"{Path(cmd[0]).name} failed: {(done.stderr or done.stdout).strip()[-400:]}")
        return server

    def url(self, db: str = "postgres") -> str:
        return f"postgresql://postgres@/{db}?host={self.root}&port={self.port}"

    def create_db(self, name: str | None = None) -> str:
        """A new empty database; returns its URL."""
        import psycopg

        name = name or f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        subprocess.run(self.run_as + [_binary("pg_ctl"), "-D", str(self.root / "data"), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)
