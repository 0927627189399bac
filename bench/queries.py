"""Queries over HTTP: p50/p99/max latency of `/events?limit=100` and `/chains/{id}` with 1M stored events while the
server generates, against `/healthz` of the same server in the same run.

    python bench/queries.py            (full: ~1M events, 2,000 requests of each kind; a few minutes)
    python bench/queries.py --smoke    (2,000 chains, 200 requests of each kind; seconds; asserts nothing about speed)

1. A SQLite store is filled the fastest way, the CLI's sqlite sink in virtual time:
   `python -m engine --chains chains/ --count 375000 --seed 1 --start 2026-01-01T00:00:00Z --sink sqlite:PATH -q`
   (the nine chains of chains/ make about 2.64 events per chain: ~990k events, just under the server's default
   retention, so it does not start by deleting 10% of the store); its rows are counted with sqlite3.
2. The real server is started on that file, generating on the wall clock while measured:
   `python -m engine serve --store sqlite:PATH --rate 200 --seed 2 --quiet --port 0` (200 chain starts/s, about
   480 events/s). Its retention is the default (1,000,000 events), so at 1M it deletes the oldest as it writes:
   the steady state of a full store.
3. A few hundred correlation ids are sampled from three pages of 1,000 stored events (a quarter and half way
   through the fill, by `since=`, and its newest page, by `until=`: clear of what retention deletes first).
4. One httpx.Client (keep-alive, loopback) sends rounds of four requests, the order turned each round:
   `/healthz` (the baseline: the cheapest request of the same server), `/events?limit=100`, `/chains/{id}` for a
   sampled id, `/events?limit=100&event_type=omninode.agent.*`. A request is timed from send to the last byte
   of the body. Figures: p50/p99/max in ms, each p99 / the healthz p99; the events stored and generated at the
   start and end of the measurement (from /statistics and /generator) show it was generating.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

START = "2026-01-01T00:00:00Z"
PREFIX = "/api/event-bus"
GLOB = "omninode.agent.*"
IDS = 300
WARM_UP = 20  # rounds left out
CHAINS = 375_000  # ~990k events
NAGLE_MS = 30.0  # a healthz p50 above this is the client's delayed ACK (40 ms), not the server's work


def fill(path: Path, count: int) -> dict[str, Any]:
    """The store file, filled by the CLI's sqlite sink: its event rows and time span, counted with sqlite3."""
    command = [sys.executable, "-m", "engine", "--chains", str(ROOT / "chains"), "--count", str(count),
               "--seed", "1", "--start", START, "--sink", f"sqlite:{path}", "-q"]
    began = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    fill_s = time.perf_counter() - began
    with sqlite3.connect(path) as connection:
        events, oldest, newest = connection.execute("SELECT count(*), min(ts), max(ts) FROM events").fetchone()
        chains = connection.execute("SELECT count(*) FROM chains").fetchone()[0]
    connection.close()
    return {"chains_started": count, "events": events, "chains": chains, "oldest_ms": oldest, "newest_ms": newest,
            "fill_s": round(fill_s, 1), "bytes": path.stat().st_size}


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def sample_ids(client: Any, stored: dict[str, Any], rng: random.Random) -> list[str]:
    """Correlation ids of stored chains: from pages a quarter and half way through the fill, and its newest."""
    oldest, newest = stored["oldest_ms"], stored["newest_ms"]
    pages = [{"since": _iso(oldest + (newest - oldest) * share // 4), "order": "asc"} for share in (1, 2)]
    pages.append({"until": _iso(newest)})
    ids: set[str] = set()
    for params in pages:
        response = client.get(f"{PREFIX}/events", params={**params, "limit": 1000})
        response.raise_for_status()
        ids.update(event["correlation_id"] for event in response.json()["events"])
    return rng.sample(sorted(ids), min(IDS, len(ids)))


def _state(client: Any) -> dict[str, Any]:
    statistics = client.get(f"{PREFIX}/statistics").json()
    generator = client.get(f"{PREFIX}/generator").json()
    return {"events": statistics["events"], "newest": statistics["newest"],
            "generated": generator["generated"]["events"], "running": generator["running"], "at": time.monotonic()}


def measure_requests(client: Any, ids: list[str], rounds: int, rng: random.Random) -> dict[str, list[int]]:
    """Rounds of one request of each kind, the order turned each round; ns from send to the body's last byte."""
    kinds: dict[str, Any] = {
        "healthz": lambda: (f"{PREFIX}/healthz", None),
        "events_limit_100": lambda: (f"{PREFIX}/events", {"limit": 100}),
        "chain_detail": lambda: (f"{PREFIX}/chains/{rng.choice(ids)}", None),
        "events_glob_limit_100": lambda: (f"{PREFIX}/events", {"limit": 100, "event_type": GLOB}),
    }
    names = list(kinds)
    samples: dict[str, list[int]] = {name: [] for name in names}
    clock = time.perf_counter_ns
    for number in range(WARM_UP + rounds):
        turn = number % len(names)
        for name in names[turn:] + names[:turn]:
            url, params = kinds[name]()
            began = clock()
            response = client.get(url, params=params)
            elapsed = clock() - began
            if response.status_code != 200:
                raise RuntimeError(f"{name}: GET {url} answered {response.status_code}: {response.text[:300]}")
            if number >= WARM_UP:
                samples[name].append(elapsed)
    return samples


def summarize(samples: dict[str, list[int]]) -> dict[str, dict[str, float]]:
    from engine.store.aggregates import percentile

    figures = {}
    for name, values in samples.items():
        values.sort()
        figures[name] = {"count": len(values), "p50_ms": round(percentile(values, 50) / 1e6, 3),
                         "p99_ms": round(percentile(values, 99) / 1e6, 3), "max_ms": round(values[-1] / 1e6, 3)}
    base = figures["healthz"]["p99_ms"]
    for figure in figures.values():
        figure["p99_ratio"] = round(figure["p99_ms"] / base, 2)
    return figures


def measure(smoke: bool) -> dict[str, Any]:
    import httpx

    from tests.server_process import Server

    rounds = 200 if smoke else 2_000
    rng = random.Random(1)
    with tempfile.TemporaryDirectory(prefix="chainsim-bench-queries-") as folder:
        path = Path(folder) / "events.db"
        stored = fill(path, 2_000 if smoke else CHAINS)
        load_before = os.getloadavg()
        with Server("--store", f"sqlite:{path}", "--rate", "200", "--seed", "2", "--quiet") as server, \
                httpx.Client(base_url=server.url, timeout=30.0) as client:
            ids = sample_ids(client, stored, rng)
            first = _state(client)
            samples = measure_requests(client, ids, rounds, rng)
            last = _state(client)
        load_after = os.getloadavg()
    seconds = last["at"] - first["at"]
    return {
        "store": stored, "rounds": rounds, "warm_up_rounds": WARM_UP, "sampled_ids": len(ids),
        "seconds": round(seconds, 1),
        "stored_start": first["events"], "stored_end": last["events"],
        "generated_start": first["generated"], "generated_end": last["generated"],
        "generated_per_s": round((last["generated"] - first["generated"]) / seconds) if seconds > 0 else 0,
        "generating": first["running"] and last["running"],
        "newest_start": first["newest"], "newest_end": last["newest"],
        "load_average": {"before": [round(x, 2) for x in load_before], "after": [round(x, 2) for x in load_after]},
        "cpus": os.cpu_count(),
        "requests": summarize(samples),
    }


def table(results: dict[str, Any]) -> str:
    stored, requests = results["store"], results["requests"]
    out = [f"store: {stored['events']:,} events ({stored['chains']:,} chains, {stored['bytes'] / 2**20:,.0f} MiB) "
           f"filled in {stored['fill_s']} s by the CLI's sqlite sink (--count {stored['chains_started']:,})",
           f"server generating at --rate 200 (~{results['generated_per_s']:,} events/s measured): stored "
           f"{results['stored_start']:,} -> {results['stored_end']:,} events, generated {results['generated_start']:,}"
           f" -> {results['generated_end']:,} over {results['seconds']} s of measurement; default retention (1M)",
           f"{results['rounds']:,} requests of each kind over one keep-alive httpx.Client, interleaved "
           f"({results['warm_up_rounds']} rounds of warm-up left out), chain ids sampled from {results['sampled_ids']} "
           f"stored chains; load average {results['load_average']['before'][0]} before, "
           f"{results['load_average']['after'][0]} after, {results['cpus']} cores",
           "",
           "| request | p50 ms | p99 ms | max ms | p99 / healthz p99 |",
           "| --- | --- | --- | --- | --- |"]
    labels = {"healthz": "GET /healthz (baseline)", "events_limit_100": "GET /events?limit=100",
              "chain_detail": "GET /chains/{id}", "events_glob_limit_100": f"GET /events?limit=100&event_type={GLOB}"}
    for name, label in labels.items():
        figure = requests[name]
        out.append(f"| {label} | {figure['p50_ms']:.3f} | {figure['p99_ms']:.3f} | {figure['max_ms']:.3f} | "
                   f"{figure['p99_ratio']:.2f}x |")
    if requests["healthz"]["p50_ms"] > NAGLE_MS:
        out.append(f"\nNOTE: healthz p50 {requests['healthz']['p50_ms']:.1f} ms: each response waits for the client's "
                   "delayed ACK (~40 ms): the server sends a response's headers and body in two writes on a socket "
                   "without TCP_NODELAY (asyncio sets it only on sockets whose proto is IPPROTO_TCP). The figures "
                   "above measure that wait, not the queries.")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="small sizes, seconds; asserts nothing about speed")
    args = parser.parse_args()
    began = time.monotonic()
    results = measure(args.smoke)
    results["elapsed_s"] = round(time.monotonic() - began, 1)
    print(table(results))
    print(f"({results['elapsed_s']:.0f} s in all)")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
