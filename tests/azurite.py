"""Azurite's Table service for the tests: started once per session, stopped afterwards.

It runs from the project's pinned npm package (``npm ci`` installs it;
``scripts/test`` does that), on a free loopback port, in memory, with
telemetry off.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO

from shared.clients import AZURITE_ACCOUNT, AZURITE_KEY

PROJECT_ROOT = Path(__file__).resolve().parent.parent
AZURITE_TABLE = PROJECT_ROOT / "node_modules" / ".bin" / "azurite-table"
STOP_TIMEOUT_SECONDS = 10

# Azurite's published development account and key, as the production client factory uses them.
ACCOUNT_NAME, ACCOUNT_KEY = AZURITE_ACCOUNT, AZURITE_KEY


class AzuriteError(RuntimeError):
    """Azurite is not installed or did not start; the message says which and why."""


def free_loopback_port() -> int:
    """A port nobody listens on now (the OS picks it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _accepts_connections(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _die_with_parent() -> None:
    # If pytest itself is killed, its teardown never runs; the kernel then
    # stops Azurite for us (Linux only; elsewhere teardown is all we have).
    import ctypes

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class AzuriteTable:
    """A running Azurite Table service; use as a context manager."""

    FLAGS = ("--inMemoryPersistence", "--disableTelemetry", "--skipApiVersionCheck", "--loose", "--silent")

    def __init__(self) -> None:
        self.port = free_loopback_port()
        self._process: subprocess.Popen[bytes] | None = None
        self._workspace: tempfile.TemporaryDirectory[str] | None = None
        self._output: IO[bytes] | None = None

    @property
    def endpoint(self) -> str:
        """The Table endpoint, path-style with the development account."""
        return f"http://127.0.0.1:{self.port}/{ACCOUNT_NAME}"

    def __enter__(self) -> AzuriteTable:
        if not AZURITE_TABLE.exists():
            raise AzuriteError(
                f"{AZURITE_TABLE.relative_to(PROJECT_ROOT)} is missing: run `npm ci` in {PROJECT_ROOT} "
                "(scripts/test, the project's test command, does it for you)"
            )
        self._workspace = tempfile.TemporaryDirectory(prefix="azurite-")
        self._output = tempfile.TemporaryFile()
        self._process = subprocess.Popen(
            [str(AZURITE_TABLE), "--tableHost", "127.0.0.1", "--tablePort", str(self.port), *self.FLAGS],
            cwd=self._workspace.name,  # anything Azurite writes stays out of the project
            stdin=subprocess.DEVNULL,
            stdout=self._output,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
        # No deadline: a loaded machine starts it late, not never; a failed start ends the process.
        while not _accepts_connections(self.port):
            if self._process.poll() is not None:
                output = self._read_output()
                why = f"exited with {self._process.returncode}"
                self.__exit__(None, None, None)
                raise AzuriteError(f"Azurite Table did not start on 127.0.0.1:{self.port} ({why}). Its output:\n{output}")
            time.sleep(0.1)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._process is not None:
            if self._process.poll() is None:
                self._process.terminate()
                try:
                    self._process.wait(timeout=STOP_TIMEOUT_SECONDS)
                except subprocess.TimeoutExpired:
                    self._process.kill()
                    self._process.wait()
            self._process = None
        if self._output is not None:
            self._output.close()
            self._output = None
        if self._workspace is not None:
            self._workspace.cleanup()
            self._workspace = None

    def _read_output(self) -> str:
        if self._output is None:
            return ""
        self._output.seek(0)
        return self._output.read().decode(errors="replace")[-4000:]
