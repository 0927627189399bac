"""The baseline: the seven seed chains of chains/ written by hand in plain Python, as a user would without the engine.

It does the same work per event as the engine: the same envelope fields in the same order, the same
Faker and random calls (a `random.Random` per chain instance, seeded like the engine's, driving a shared
seeded Faker generator), the same orjson encoding, Poisson arrivals with a weighted chain choice, and
concurrent chains interleaved on one heapq. Its output is byte-identical to
`python -m engine --chains chains/ --only <the seven> --count N --seed S --start T` (bench/virtual.py checks it;
the seven are SEVEN in bench/_common.py: chains/ holds more), so the engine/hand-written ratio compares equal work.

    python bench/handwritten.py --count 1000 --seed 1 --start-ms 1767225600000 --output out.jsonl
"""

from __future__ import annotations

import argparse
import bisect
import heapq
import itertools
import time
from collections.abc import Generator
from pathlib import Path
from random import Random
from typing import Any

import faker
import orjson
import yaml

DATA_DIR = Path(__file__).resolve().parent.parent / "chains" / "data"
DATA = {path.stem: yaml.safe_load(path.read_text()) for path in sorted(DATA_DIR.glob("*.yaml"))}
FAKE = faker.Faker("en_US")._factories[0]  # one shared generator; each instance points it at its own rng
WEIGHTS = {  # chain -> weight, in file-name order like the engine's catalog
    "agent_execution": 20, "code_generation": 15, "consul_service": 7, "database_query": 10,
    "intelligence_query": 30, "metadata_stamping": 10, "vault_secret": 8,
}
Chain = Generator[int, int, None]  # yields the delay to its next event, receives the time it is due


def uuid4(rng: Random) -> str:
    bits = rng.getrandbits(128)
    bits = (bits & ~(0xF000 << 64) | (0x4000 << 64)) & ~(0xC000 << 48) | (0x8000 << 48)
    text = f"{bits:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


class Instance:
    """What every chain needs: its rng, its Faker, its ids, and a way to emit an event."""

    _second, _prefix = -1, ""

    def __init__(self, run: Run, name: str, number: int) -> None:
        self.run, self.name = run, name
        self.rng = Random(f"{run.seed}:{name}:{number}")
        self.correlation_id = uuid4(self.rng)
        self.causation_id: str | None = None
        self.start = 0

    def fake(self) -> Any:
        FAKE.random = self.rng
        return FAKE

    def event(self, now: int, step: str, event_type: str) -> dict[str, Any]:
        """The envelope of the event due at `now` (drawing its id comes before its payload's draws)."""
        second, millis = divmod(now, 1000)
        if second != Instance._second:
            Instance._second = second
            Instance._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return {
            "event_id": uuid4(self.rng), "event_type": event_type, "correlation_id": self.correlation_id,
            "causation_id": self.causation_id, "tenant_id": "default-tenant", "namespace": "development",
            "timestamp": f"{Instance._prefix}.{millis:03d}Z", "chain": self.name, "step": step,
        }

    def emit(self, event: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
        event["payload"] = payload
        self.causation_id = event["event_id"]
        self.run.write(event)
        return event


def agent_execution(c: Instance) -> Chain:
    rng = c.rng
    agent, task = rng.choice(DATA["agents"]), c.fake().catch_phrase()
    now = yield 0
    c.start = now
    c.emit(c.event(now, "routing_requested", "omninode.agent.routing.requested.v1"),
           {"task": task, "candidates": rng.sample(DATA["agents"], 3)})
    delay = rng.randint(50, 150)
    now = yield delay
    c.emit(c.event(now, "routing_completed", "omninode.agent.routing.completed.v1"),
           {"selected_agent": agent, "confidence": round(rng.uniform(0.6, 0.98), 3), "routing_time_ms": delay})
    now = yield 100
    c.emit(c.event(now, "execution_started", "omninode.agent.execution.started.v1"), {"agent": agent, "task": task})
    completed = bisect.bisect_right((90.0, 100.0), rng.random() * 100.0) == 0
    delay = rng.randint(500, 1500)
    now = yield delay
    if completed:
        c.emit(c.event(now, "execution_completed", "omninode.agent.execution.completed.v1"),
               {"agent": agent, "duration_ms": delay, "tokens_used": rng.randint(400, 6000),
                "quality_score": round(rng.uniform(0.7, 1.0), 2)})
    else:
        c.emit(c.event(now, "execution_failed", "omninode.agent.execution.failed.v1"),
               {"agent": agent, "duration_ms": delay, "error": rng.choice(DATA["errors"])})


def code_generation(c: Instance) -> Chain:
    rng = c.rng
    language = rng.choice(DATA["languages"])
    now = yield 0
    c.start = now
    c.emit(c.event(now, "generation_requested", "omninode.code.generation.requested.v1"),
           {"language": language, "prompt": c.fake().sentence(nb_words=10),
            "repository": f"{c.fake().domain_word()}/{c.fake().slug()}"})
    now = yield rng.randint(200, 500)
    c.emit(c.event(now, "generation_completed", "omninode.code.generation.completed.v1"),
           {"language": language, "files_changed": rng.randint(1, 8), "lines_added": rng.randint(5, 400),
            "duration_ms": now - c.start})


def consul_service(c: Instance) -> Chain:
    rng = c.rng
    service = rng.choice(DATA["services"])
    now = yield 0
    c.start = now
    first = c.emit(c.event(now, "register_requested", "omninode.consul.service.register.requested.v1"),
                   {"service_name": service["name"], "service_id": f"{service['name']}-{rng.randbytes(4).hex()}",
                    "address": c.fake().ipv4_private(), "port": service["port"]})
    now = yield 50
    c.emit(c.event(now, "service_registered", "omninode.consul.service.registered.v1"),
           {"service_id": first["payload"]["service_id"], "health_check": "passing"})


def database_query(c: Instance) -> Chain:
    rng = c.rng
    table = rng.choice(DATA["tables"])
    now = yield 0
    c.start = now
    operations = {"SELECT": 70, "INSERT": 15, "UPDATE": 10, "DELETE": 5}
    first = c.emit(c.event(now, "query_requested", "omninode.database.query.requested.v1"),
                   {"operation": rng.choices(list(operations), weights=list(operations.values()), k=1)[0],
                    "table": table})
    now = yield rng.randint(10, 60)
    select = first["payload"]["operation"] == "SELECT"
    c.emit(c.event(now, "query_completed", "omninode.database.query.completed.v1"),
           {"table": table, "rows": rng.randint(0, 500) if select else rng.randint(0, 5),
            "duration_ms": now - c.start})


def intelligence_query(c: Instance) -> Chain:
    rng = c.rng
    query, operation_type = rng.choice(DATA["queries"]), rng.choice(DATA["operation_types"])
    now = yield 0
    c.start = now
    first = c.emit(c.event(now, "query_requested", "omninode.intelligence.query.requested.v1"),
                   {"query": query, "operation_type": operation_type, "requested_by": c.fake().user_name(),
                    "max_results": rng.choice([5, 10, 20])})
    now = yield rng.randint(100, 300)
    c.emit(c.event(now, "query_completed", "omninode.intelligence.query.completed.v1"),
           {"query": query, "operation_type": operation_type,
            "result": {"matches": rng.randint(0, first["payload"]["max_results"]),
                       "confidence": round(rng.uniform(0.55, 0.99), 3),
                       "summary": c.fake().sentence(nb_words=8)},
            "duration_ms": now - c.start})


def metadata_stamping(c: Instance) -> Chain:
    rng = c.rng
    now = yield 0
    c.start = now
    first = c.emit(c.event(now, "stamping_requested", "omninode.metadata.stamping.requested.v1"),
                   {"file_path": c.fake().file_path(depth=3, extension="py"), "size_bytes": rng.randint(200, 250000)})
    now = yield rng.randint(50, 150)
    event = c.event(now, "stamping_stamped", "omninode.metadata.stamping.stamped.v1")
    c.emit(event, {"file_path": first["payload"]["file_path"], "blake3_hash": rng.randbytes(32).hex(),
                   "stamped_at": event["timestamp"], "duration_ms": now - c.start})


def vault_secret(c: Instance) -> Chain:
    rng = c.rng
    path = rng.choice(DATA["secrets"])
    now = yield 0
    c.start = now
    c.emit(c.event(now, "read_requested", "omninode.vault.secret.read.requested.v1"),
           {"path": path, "requested_by": rng.choice(DATA["agents"])})
    now = yield rng.randint(20, 50)
    c.emit(c.event(now, "read_completed", "omninode.vault.secret.read.completed.v1"),
           {"path": path, "version": rng.randint(1, 12), "lease_duration_s": 3600, "duration_ms": now - c.start})


CHAINS = {name: globals()[name] for name in WEIGHTS}


class Run:
    """Poisson arrivals of weighted chains, interleaved in timestamp order on one heap."""

    def __init__(self, seed: int, start_ms: int, count: int, rate: float, out: Any) -> None:
        self.seed, self.start_ms, self.count, self.rate, self.out = seed, start_ms, count, rate, out
        self.events = 0

    def write(self, event: dict[str, Any]) -> None:
        self.events += 1
        self.out.write(orjson.dumps(event, option=orjson.OPT_APPEND_NEWLINE))

    def run(self) -> int:
        arrivals = Random(f"{self.seed}:arrivals")
        gap = lambda: arrivals.expovariate(self.rate / 1000.0)  # noqa: E731
        next_arrival = float(self.start_ms)  # exact: gaps add up unrounded, each start rounds to the ms
        names = list(WEIGHTS)
        cumulative = list(itertools.accumulate(float(w) for w in WEIGHTS.values()))
        numbers = dict.fromkeys(names, 0)
        # (time, rank, counter, chain): at equal times the older chain goes first; rank -1, chain None:
        # the next arrival, which goes before every chain. The first chain starts at the start.
        heap: list[tuple[int, int, int, Chain | None]] = [(self.start_ms, -1, 0, None)]
        counter = itertools.count(1)
        started = 0
        while heap:
            now, rank, _, chain = heapq.heappop(heap)
            if chain is None:  # start a chain, then schedule the next arrival
                name = names[bisect.bisect_right(cumulative, arrivals.random() * cumulative[-1])]
                chain = CHAINS[name](Instance(self, name, numbers[name]))
                numbers[name] += 1
                heapq.heappush(heap, (now + next(chain), started, next(counter), chain))
                started += 1
                if started < self.count:
                    next_arrival += gap()
                    heapq.heappush(heap, (round(next_arrival), -1, next(counter), None))
                continue
            try:
                heapq.heappush(heap, (now + chain.send(now), rank, next(counter), chain))
            except StopIteration:
                pass
        return self.events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, required=True, help="chain instances to start")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--start-ms", type=int, default=1767225600000, help="epoch ms (2026-01-01T00:00:00Z)")
    parser.add_argument("--rate", type=float, default=10.0, help="chain starts per simulated second")
    parser.add_argument("--output", default="/dev/null")
    args = parser.parse_args()
    with open(args.output, "wb", buffering=256 * 1024) as out:
        Run(args.seed, args.start_ms, args.count, args.rate, out).run()


if __name__ == "__main__":
    main()
