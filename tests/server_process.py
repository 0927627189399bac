"""The real server, as a user starts it: `python -m engine serve ... --port 0` in a subprocess, its URL read from
the line it prints, stopped with SIGTERM (or killed). Plain helpers, no pytest: tests and bench/ use them."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CHAINS = ROOT / "chains"
START_TIMEOUT_S = 30.0
URL = re.compile(r"chainsim: serving (http://\S+/) ")


class Server:
    """One `serve` process; `url` ends with "/"; `stderr` is what it printed so far (read on a thread)."""

    def __init__(self, *args: str, env: dict[str, str] | None = None, cwd: str | Path | None = None,
                 chains: str | Path = CHAINS) -> None:
        command = [sys.executable, "-m", "engine", "serve", "--chains", str(chains), "--port", "0", *args]
        environment = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self._stdout = tempfile.TemporaryFile()
        self.process = subprocess.Popen(command, stdout=self._stdout, stderr=subprocess.PIPE, env=environment,
                                        cwd=cwd or ROOT, text=True)
        self._lines: list[str] = []
        self._found = threading.Event()
        self.url = ""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self._found.wait(START_TIMEOUT_S) or not self.url:
            self.kill()
            raise RuntimeError(f"serve did not start (exit {self.process.poll()}):\n{self.stderr}")

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self._lines.append(line)
            match = URL.search(line)
            if match and not self.url:
                self.url = match.group(1)
                self._found.set()
        self._found.set()

    @property
    def stderr(self) -> str:
        return "".join(self._lines)

    @property
    def api(self) -> str:
        return self.url + "api/event-bus"

    @property
    def ws(self) -> str:
        return "ws" + self.url[4:] + "api/event-bus/stream"

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM, and wait for the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout)
        self._reader.join(5)
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)
        self._reader.join(5)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.process.poll() is None:
            try:
                self.stop()
            except subprocess.TimeoutExpired:
                self.kill()


def wait_until(predicate: Any, timeout: float = 20.0, every: float = 0.05) -> Any:
    """Poll until predicate() is truthy (returned) or fail after timeout: never a timed assertion, only a bound."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout:g} s")
        time.sleep(every)
