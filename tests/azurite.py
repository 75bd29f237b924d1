"""Azurite's Table service for the tests: started once per session, stopped afterwards.

It runs from the project's pinned npm package (``npm ci`` installs it; the
README's test command does that), on a free loopback port, in memory, with
telemetry off.
"""

from __future__ import annotations

import socket
import subprocess
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
AZURITE_TABLE = PROJECT_ROOT / "node_modules" / ".bin" / "azurite-table"
START_TIMEOUT_SECONDS = 30


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _accepts_connections(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


class AzuriteTable:
    """A running Azurite Table service; use as a context manager."""

    def __init__(self) -> None:
        self.port = _free_port()
        self._workspace = tempfile.TemporaryDirectory(prefix="azurite-")
        self._log = tempfile.TemporaryFile()
        self._process: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/devstoreaccount1"

    def __enter__(self) -> "AzuriteTable":
        if not AZURITE_TABLE.exists():
            raise RuntimeError(f"{AZURITE_TABLE.relative_to(PROJECT_ROOT)} is missing: run the README's test command (it runs `npm ci`)")
        self._process = subprocess.Popen(
            [
                str(AZURITE_TABLE), "--tableHost", "127.0.0.1", "--tablePort", str(self.port), "--inMemoryPersistence",
                "--disableTelemetry", "--skipApiVersionCheck", "--loose", "--silent",
            ],
            cwd=self._workspace.name,  # keeps anything Azurite writes out of the project
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not _accepts_connections(self.port):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                self._log.seek(0)
                raise RuntimeError(f"Azurite did not start on port {self.port}: {self._log.read().decode(errors='replace')[-2000:]}")
            time.sleep(0.1)
        return self

    def __exit__(self, *exc_info) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._workspace.cleanup()
