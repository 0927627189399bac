"""Delivery: the events per second the WebSocket stream delivers to 1, 10 and 100 clients with a p99 delivery
latency (event timestamp -> client receipt) of at most 50 ms and nothing lost, against a floor: a minimal
broadcast server written directly with `websockets` sending the same pre-encoded lines at the same times to the
same clients. Then the generator's own lateness with 100 clients and one client that reads nothing, at the
highest rate the stream reached with 10 clients.

Three processes: the server (chainsim's, or the floor: bench/delivery_server.py), the clients
(bench/delivery_clients.py, raw protocols, all in one process) and this one, which runs the trials. Both servers
run the same ladder of rates in the same run, rung by rung (the floor first, then chainsim at the same rate), and
each stops at its first rung that fails; the figure is the highest rung passed, the ratio chainsim / floor. The
chainsim side is the real path: a wall-clock run of the catalog (chains/) publishing to the hub, one sender task
per client, uvicorn's websockets-sansio protocol. The store is not in it (its writer has a bench of its own).

    python bench/delivery.py [--smoke] [--seconds S]
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))
PYTHON = sys.executable
START_MS = 1767225600000
PATH = "/api/event-bus/stream"
P99_MS = 50.0
ATTEMPTS = 3
LADDERS = {1: [2000, 3000, 4500, 6500, 9000, 12500, 17500, 25000, 35000],
           10: [1000, 1500, 2200, 3200, 4500, 6500, 9000, 12500, 17500],
           100: [100, 200, 350, 500, 700, 1000, 1400, 2000, 2800, 4000]}
SMOKE_LADDERS = {1: [1000], 10: [500]}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def read_line(process: subprocess.Popen[str], timeout: float) -> str:
    """The next line the process prints, waiting at most `timeout` seconds."""
    stdout: IO[str] | None = process.stdout
    assert stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise TimeoutError(f"no answer from {process.args!r} in {timeout:.0f} s")
    line = stdout.readline()
    if not line:
        raise RuntimeError(f"{process.args!r} ended (exit {process.wait()})")
    return line.strip()


def send(process: subprocess.Popen[str], text: str) -> None:
    assert process.stdin is not None
    process.stdin.write(text + "\n")
    process.stdin.flush()


KINDS = ("floor", "stream", "chainsim")  # the order of the trials at each rung


class Server:
    """A server process that stays up for all of its trials: `floor`; `stream`, chainsim's server publishing
    the floor's lines (the delivery alone); `chainsim`, chainsim's server with its generator."""

    def __init__(self, kind: str) -> None:
        self.kind, self.port = kind, free_port()
        program = "floor" if kind == "floor" else "chainsim"
        self.process = subprocess.Popen([PYTHON, str(BENCH / "delivery_server.py"), program, str(self.port)], cwd=ROOT,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert "listening" == read_line(self.process, 60)

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class Lines:
    """The pre-encoded lines of a run (the virtual run of the options the chainsim server runs on the wall
    clock: the same events), in a file the floor reads."""

    def __init__(self, folder: Path) -> None:
        from engine.load.catalog import load_catalog

        self.folder, self.catalog = folder, load_catalog(ROOT / "chains")
        self.made: dict[tuple[float, float], tuple[Path, int]] = {}

    def of(self, rate: float, seconds: float) -> tuple[Path, int]:
        if (rate, seconds) not in self.made:
            from engine.run.options import RunOptions
            from engine.run.simulation import Simulation
            from engine.sinks import SinkBase

            path = self.folder / f"lines-{rate:g}-{seconds:g}.jsonl"
            with path.open("wb") as out:
                class Write(SinkBase):
                    count = 0

                    def write(self, event: dict[str, Any], line: bytes) -> None:
                        out.write(line)
                        self.count += 1

                sink = Write()
                options = RunOptions(seed=1, start_ms=START_MS, rate=f"{rate} events/s",
                                     duration_ms=round(seconds * 1000))
                Simulation(self.catalog, options, sink).run()
            self.made[(rate, seconds)] = path, sink.count
        return self.made[(rate, seconds)]


def trial(server: Server, lines: Lines, clients: int, rate: float, seconds: float, slow: int = 0) -> dict[str, Any]:
    """One run at `rate` events/s for `seconds` to `clients` (+ `slow` that read nothing): the clients' figures,
    the server's answer, and whether it passed (every event to every client, p99 <= 50 ms)."""
    path, expected = lines.of(rate, seconds)
    reader = subprocess.Popen([PYTHON, str(BENCH / "delivery_clients.py"), str(server.port), PATH, str(clients),
                               str(slow), str(expected), str(seconds)], cwd=ROOT, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert "ready" == read_line(reader, 120)
        origin = time.time() + 0.3
        command = f"go {origin!r} {rate} {seconds}" if server.kind == "chainsim" else f"go {origin!r} {path}"
        send(server.process, command)
        send(reader, f"go {origin!r}")
        got = json.loads(read_line(reader, seconds + 60))
        answer = json.loads(read_line(server.process, seconds + 60))
    finally:
        reader.kill()
        reader.wait()
    got["expected"], got["server"] = expected, answer
    got["complete"] = all(count == expected for count in got["events"]) and not got["dropped"]
    got["passed"] = got["complete"] and got["p99"] <= P99_MS
    got["cpu_us"] = answer["cpu_s"] / max(answer["events"] * clients, 1) * 1e6  # the server's CPU per message
    return got


def ladder(servers: dict[str, Server], lines: Lines, clients: int, rates: list[int], seconds: float,
           log: Any, attempts: int = ATTEMPTS) -> dict[str, dict[str, Any]]:
    """Each server up the ladder, rung by rung: a rung passes if one of ATTEMPTS trials passes (the machine is
    shared: a pause of the whole process fails a trial now and then); a server stops after two rungs in a row
    that fail. Its figures at the highest rung it passed, and at every rung it passed (`passed`: rate -> figures)."""
    best: dict[str, dict[str, Any]] = {kind: {"passed": {}} for kind in servers}
    failed = dict.fromkeys(servers, 0)
    for rate in rates:
        for kind in [k for k in KINDS if k in servers and failed[k] < 2]:
            for _ in range(attempts):
                result = trial(servers[kind], lines, clients, rate, seconds)
                log(f"  {clients:>3} clients {rate:>6} events/s {kind:<8} p99 {result['p99']:7.1f} ms  "
                    f"{result['cpu_us']:6.1f} µs CPU/message  "
                    f"{'ok' if result['passed'] else 'fail'}{'' if result['complete'] else ' (lost events)'}")
                if result["passed"]:
                    break
            if result["passed"]:
                best[kind] = {"rate": rate, **result, "passed": {**best[kind]["passed"], rate: result}}
                failed[kind] = 0
            else:
                failed[kind] += 1
        if all(count >= 2 for count in failed.values()):
            break
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="one rung for 1 and 10 clients: checks it runs (< 15 s)")
    parser.add_argument("--seconds", type=float, default=None, help="length of each trial (default 2, smoke 0.4)")
    parser.add_argument("--quiet", action="store_true", help="only the table")
    args = parser.parse_args(argv)
    seconds = args.seconds or (0.4 if args.smoke else 2.0)
    ladders = SMOKE_LADDERS if args.smoke else LADDERS

    def log(text: str) -> None:
        if not args.quiet:
            print(text, file=sys.stderr, flush=True)

    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="chainsim-delivery-") as folder:
        lines = Lines(Path(folder))
        servers = {kind: Server(kind) for kind in KINDS}
        try:
            results = {clients: ladder(servers, lines, clients, rates, seconds, log, 1 if args.smoke else ATTEMPTS)
                       for clients, rates in ladders.items()}
            at = results[10]["chainsim"].get("rate") or ladders[10][0]
            alone = trial(servers["chainsim"], lines, 0, at, seconds)
            late = trial(servers["chainsim"], lines, 100, at, seconds, slow=1)
        finally:
            for server in servers.values():
                server.close()
    print(table(results, alone, late, at, seconds, time.monotonic() - began))
    return 0


def table(results: dict[int, dict[str, dict[str, Any]]], alone: dict[str, Any], late: dict[str, Any], at: float,
          seconds: float, elapsed: float) -> str:
    out = [f"delivery over loopback, {os.cpu_count()} cores, {seconds:g} s trials; a rate passes when every client "
           f"gets every event with p99 <= {P99_MS:g} ms (event timestamp -> receipt), in one of {ATTEMPTS} trials. "
           "floor: websockets' broadcast of pre-encoded lines; stream: chainsim's stream under uvicorn publishing "
           "the same lines; chainsim: the same with the catalog generated on the wall clock. ev/s: the highest "
           "rate passed (ratio to the floor's); CPU: the server's µs per message at the highest rate both it and "
           "the floor passed (ratio: floor's / its own, the figure the machine's noise moves least).",
           f"{'clients':>7}  {'floor ev/s':>10}  {'stream ev/s':>11} {'ratio':>5} {'CPU µs':>13} {'ratio':>5}  "
           f"{'chainsim ev/s':>13} {'ratio':>5} {'CPU µs':>13} {'ratio':>5}"]
    for clients, best in results.items():
        floor = best.get("floor", {})
        row = f"{clients:>7}  {floor.get('rate', 0):>10,}"
        for kind, width in (("stream", 11), ("chainsim", 13)):
            ours = best.get(kind, {})
            ratio = f"{ours.get('rate', 0) / floor['rate']:.2f}x" if floor.get("rate") else "-"
            common = sorted(set(floor.get("passed", {})) & set(ours.get("passed", {})))
            if common:
                theirs, own = floor["passed"][common[-1]]["cpu_us"], ours["passed"][common[-1]]["cpu_us"]
                cpu, cpu_ratio = f"{own:.1f} vs {theirs:.1f}", f"{theirs / own:.2f}x"
            else:
                cpu, cpu_ratio = "-", "-"
            row += f"  {ours.get('rate', 0):>{width},} {ratio:>5} {cpu:>13} {cpu_ratio:>5}"
        out.append(row)
    lateness, baseline = late["server"]["lateness"], alone["server"]["lateness"]
    out.append(f"generator lateness at {at:,} events/s (chainsim's best with 10 clients), with 100 clients + 1 that "
               f"reads nothing: p50 {lateness['p50']:.2f} ms, p99 {lateness['p99']:.2f} ms, max {lateness['max']:.2f} "
               f"ms; with no client (same run): p50 {baseline['p50']:.2f}, p99 {baseline['p99']:.2f}, max "
               f"{baseline['max']:.2f} ms. The 100 clients: delivery p99 {late['p99']:.1f} ms, "
               f"{'every event' if late['complete'] else 'events lost (they cannot keep up)'}")
    out.append(f"({elapsed:.0f} s in all)")
    return "\n".join(out)


if __name__ == "__main__":
    raise SystemExit(main())
