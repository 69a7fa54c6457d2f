"""A throwaway PostgreSQL cluster: initdb in a temporary directory, a Unix socket only.

Tests run it with fsync off (they test logic and crash semantics of the processes,
not of the disk); the benchmark turns fsync on, so its figures are durable commits.

As root the server runs as the `postgres` user (PostgreSQL refuses to run as root).
`PgCluster.available()` says why it cannot run here, for a clear skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

PORT = 55433


def _binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(candidate)
    return None


class PgCluster:
    def __init__(self, *, fsync: bool = False) -> None:
        self.fsync = fsync
        self.root = Path(tempfile.mkdtemp(prefix="orchestrator-pg-"))
        self.data = self.root / "data"
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
            self._as_user = ["runuser", "-u", "postgres", "--"]

    @staticmethod
    def available() -> str | None:
        """None when a cluster can be started here, else why not."""
        if _binary("initdb") is None or _binary("pg_ctl") is None:
            return "no PostgreSQL binaries (initdb, pg_ctl) on this machine"
        if os.geteuid() == 0 and shutil.which("runuser") is None:
            return "running as root without runuser to start PostgreSQL as the postgres user"
        return None

    @property
    def dsn(self) -> str:
        return f"host={self.root} port={PORT} user=postgres dbname=postgres"

    def _run(self, *argv: str) -> None:
        subprocess.run([*self._as_user, *argv], check=True, capture_output=True, timeout=120)

    def init(self) -> None:
        self._run(str(_binary("initdb")), "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")

    def start(self) -> None:
        options = f"-p {PORT} -k {self.root} -c listen_addresses='' -c max_connections=50"
        if not self.fsync:
            options += " -c fsync=off"
        self._run(str(_binary("pg_ctl")), "-D", str(self.data), "-o", options, "-l", str(self.root / "log"), "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run(str(_binary("pg_ctl")), "-D", str(self.data), "-m", mode, "-w", "stop")

    def destroy(self) -> None:
        try:
            self.stop("immediate")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.root, ignore_errors=True)
