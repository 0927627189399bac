"""The event-bus server as a user runs it: `python -m engine serve` in a subprocess, real HTTP (httpx) and
WebSocket (websockets) clients over loopback, its SQLite file on disk, SIGTERM and SIGKILL."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import websockets

from .server_process import ROOT, Server, wait_until

pytest_plugins = ["tests.conftest_services"]  # kafka_broker, postgres, pg_table

FAST = ("--seed", "5", "--rate", "200", "--initial", "5")


def _all_pages(client: httpx.Client, api: str, **params: str) -> list[dict]:
    events: list[dict] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        page = client.get(f"{api}/events", params=query).raise_for_status().json()
        events += page["events"]
        cursor = page["next_cursor"]
        if cursor is None:
            return events


@pytest.fixture(scope="module")
def server():
    with Server("--store", "memory", *FAST, "--count", "400") as running:
        with httpx.Client(timeout=10) as client:
            wait_until(lambda: client.get(f"{running.api}/generator").json()["running"] is False
                       and client.get(f"{running.api}/generator").json()["generated"]["chains"] == 400)
            wait_until(lambda: client.get(f"{running.api}/statistics").json()["in_flight"] == 0)
        yield running


@pytest.fixture(scope="module")
def stored(server):
    with httpx.Client(timeout=10) as client:
        return _all_pages(client, server.api, order="asc", limit="1000")


def test_a_finished_run_keeps_serving_every_event_it_generated(server, stored):
    with httpx.Client(timeout=10) as client:
        stats = client.get(f"{server.api}/statistics").json()
        generator = client.get(f"{server.api}/generator").json()
    assert stats["events"] == len(stored) == generator["generated"]["events"]
    assert stats["chains"] == 400 and stats["in_flight"] == 0
    assert len({event["event_id"] for event in stored}) == len(stored)
    assert [event["timestamp"] for event in stored] == sorted(event["timestamp"] for event in stored)


def test_each_filter_returns_exactly_the_matching_events(server, stored):
    one = stored[len(stored) // 2]
    cases = {
        "event_type": (one["event_type"], lambda e: e["event_type"] == one["event_type"]),
        "chain": (one["chain"], lambda e: e["chain"] == one["chain"]),
        "correlation_id": (one["correlation_id"], lambda e: e["correlation_id"] == one["correlation_id"]),
        "tenant_id": (one["tenant_id"], lambda e: e["tenant_id"] == one["tenant_id"]),
        "namespace": (one["namespace"], lambda e: e["namespace"] == one["namespace"]),
    }
    with httpx.Client(timeout=10) as client:
        for name, (value, keep) in cases.items():
            got = _all_pages(client, server.api, order="asc", **{name: value})
            assert got == [e for e in stored if keep(e)], name
        glob = _all_pages(client, server.api, order="asc", event_type="omninode.agent.*")
        assert glob == [e for e in stored if e["event_type"].startswith("omninode.agent.")] and glob
        middle = stored[len(stored) // 3]["timestamp"], stored[2 * len(stored) // 3]["timestamp"]
        window = _all_pages(client, server.api, order="asc", since=middle[0], until=middle[1])
        assert window == [e for e in stored if middle[0] <= e["timestamp"] <= middle[1]]
        newest = client.get(f"{server.api}/events", params={"limit": "3"}).json()["events"]
        assert newest == stored[::-1][:3]


def test_a_chain_instance_comes_with_its_events_in_causal_order(server, stored):
    by_chain: dict[str, list[dict]] = {}
    for event in stored:
        by_chain.setdefault(event["correlation_id"], []).append(event)
    correlation_id, events = max(by_chain.items(), key=lambda item: len(item[1]))
    with httpx.Client(timeout=10) as client:
        detail = client.get(f"{server.api}/chains/{correlation_id}").json()
        listing = client.get(f"{server.api}/chains", params={"chain": events[0]["chain"], "limit": "1000"}).json()
        missing = client.get(f"{server.api}/chains/00000000-0000-0000-0000-000000000000")
    assert detail["chain"] == events[0]["chain"] and detail["status"] == "finished"
    assert [e["event_id"] for e in detail["events"]] == [e["event_id"] for e in events]
    for before, after in zip(detail["events"], detail["events"][1:], strict=False):
        assert after["causation_id"] == before["event_id"]
    assert detail["outcome"]
    assert correlation_id in {c["correlation_id"] for c in listing["chains"]}
    assert missing.status_code == 404 and missing.json()["error"]["parameter"] == "correlation_id"


def test_the_catalog_is_what_list_prints(server):
    with httpx.Client(timeout=10) as client:
        catalog = client.get(f"{server.api}/catalog").json()
    names = [chain["name"] for chain in catalog["chains"]]
    assert sorted(names) == sorted(p.stem for p in (ROOT / "chains").glob("*.yaml"))
    assert abs(sum(chain["share"] for chain in catalog["chains"]) - 100) < 0.1


@pytest.mark.parametrize("query, parameter", [
    ("limit=abc", "limit"), ("limit=0", "limit"), ("limit=1001", "limit"), ("order=sideways", "order"),
    ("cursor=bm90LWEtY3Vyc29y", "cursor"), ("since=yesterday", "since"), ("until=2026-13-01", "until"),
    ("colour=red", "colour"), ("chain=a&chain=b", "chain"), ("event_type=" + "x" * 5_000, "event_type"),
])
def test_a_bad_request_gets_a_400_that_names_the_parameter(server, query, parameter):
    with httpx.Client(timeout=10) as client:
        answer = client.get(f"{server.api}/events?{query}")
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["parameter"] == parameter and error["message"] and error["allowed"]


def test_unknown_paths_methods_and_huge_queries_get_json_errors(server):
    with httpx.Client(timeout=10) as client:
        assert client.get(f"{server.api}/nothing").status_code == 404
        assert client.delete(f"{server.api}/events").status_code == 405
        assert client.get(f"{server.api}/events?chain={'y' * 10_000}").status_code == 414
        page = client.get(server.url)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "default-src 'self'" in page.headers["content-security-policy"]  # nothing a payload holds can run


def test_pagination_while_events_keep_arriving_gives_each_event_once():
    """Walk every page (oldest first) while the generator keeps inserting; then walk again once it is stopped:
    the first walk is exactly the start of the second, with nothing missing and nothing twice."""
    with Server("--store", "memory", "--seed", "8", "--rate", "30", "--initial", "50") as server, \
            httpx.Client(timeout=10) as client:
        wait_until(lambda: client.get(f"{server.api}/statistics").json()["events"] > 300)
        walked = _all_pages(client, server.api, order="asc", limit="50")
        newest_first: list[dict] = []
        cursor = None
        for _ in range(20):
            page = client.get(f"{server.api}/events", params={"limit": "25", **({"cursor": cursor} if cursor else {})})
            newest_first += page.json()["events"]
            cursor = page.json()["next_cursor"]
            if cursor is None:
                break
        client.post(f"{server.api}/generator/stop").raise_for_status()
        everything = _all_pages(client, server.api, order="asc", limit="1000")
    ids = [e["event_id"] for e in everything]
    assert [e["event_id"] for e in walked] == ids[:len(walked)]
    assert len(walked) > 300
    descending = [e["event_id"] for e in newest_first]
    assert len(set(descending)) == len(descending)
    start = ids.index(descending[0])
    assert descending == ids[start - len(descending) + 1:start + 1][::-1]


def test_start_and_stop_from_http_with_the_token():
    with Server("--store", "memory", "--seed", "3", "--token", "s3cret", "--interval", "100ms") as server, \
            httpx.Client(timeout=10) as client:
        api = server.api
        assert client.get(f"{api}/generator").json()["running"] is True
        refused = client.post(f"{api}/generator/stop")
        assert refused.status_code == 401 and refused.json()["error"]["parameter"] == "Authorization"
        auth = {"Authorization": "Bearer s3cret"}
        stopped = client.post(f"{api}/generator/stop", headers=auth).json()
        assert stopped["running"] is False
        generated = stopped["generated"]["events"]
        bad = client.post(f"{api}/generator/start", headers=auth, json={"interval_ms": -5})
        assert bad.status_code == 400 and bad.json()["error"]["parameter"] == "interval_ms"
        unknown = client.post(f"{api}/generator/start", headers=auth, json={"intervall_ms": 5})
        assert unknown.status_code == 400 and "interval_ms" in unknown.json()["error"]["allowed"]
        started = client.post(f"{api}/generator/start", headers=auth,
                              json={"continuous": False, "initial_chains": 7}).json()
        assert started["running"] is True
        assert client.post(f"{api}/generator/start", headers=auth, json={}).status_code in (200, 409)
        state = wait_until(lambda: (s := client.get(f"{api}/generator").json())["running"] is False and s)
        assert state["generated"]["chains"] >= 7 and state["generated"]["events"] > generated
        assert client.post(f"{api}/generator/start", headers=auth, content=b"x" * 5000).status_code == 413
        assert client.post(f"{api}/generator/start", headers=auth, content=b"{nope").status_code == 400


def test_listening_beyond_loopback_needs_a_token():
    result = subprocess.run([sys.executable, "-m", "engine", "serve", "--host", "0.0.0.0", "--port", "0"],
                            capture_output=True, text=True, cwd=ROOT, timeout=60,
                            env={k: v for k, v in os.environ.items() if k != "CHAINSIM_TOKEN"})
    assert result.returncode == 2
    assert "--token" in result.stderr and "Traceback" not in result.stderr


def test_invalid_chain_files_exit_2_before_listening(tmp_path):
    (tmp_path / "broken.yaml").write_text("name: broken\nsteps: [{id: a, event_type: x, after: soon}]\n")
    result = subprocess.run([sys.executable, "-m", "engine", "serve", "--chains", str(tmp_path), "--port", "0"],
                            capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 2 and "broken.yaml" in result.stderr and "Traceback" not in result.stderr


def test_enable_mock_events_false_serves_what_is_stored_and_generates_nothing(tmp_path):
    database = tmp_path / "events.db"
    with Server("--store", f"sqlite:{database}", "--seed", "1", "--count", "30", "--rate", "500") as first, \
            httpx.Client(timeout=10) as client:
        generated = wait_until(lambda: (g := client.get(f"{first.api}/generator").json())["running"] is False
                               and g["generated"]["events"])
        wait_until(lambda: client.get(f"{first.api}/statistics").json()["events"] == generated)
        stored = generated
    assert first.process.returncode == 0
    with Server("--store", f"sqlite:{database}", env={"ENABLE_MOCK_EVENTS": "false"}) as second, \
            httpx.Client(timeout=10) as client:
        assert client.get(f"{second.api}/statistics").json()["events"] == stored
        assert client.get(f"{second.api}/generator").json()["running"] is False
        assert "ENABLE_MOCK_EVENTS=false" in second.stderr


async def _collect(url: str, into: list[dict], closed: dict) -> None:
    async with websockets.connect(url) as socket:
        try:
            async for text in socket:
                into.append(json.loads(text))
        except websockets.ConnectionClosed:
            pass
        closed["code"] = socket.close_code


def test_sigterm_with_clients_connected_closes_them_commits_and_prints_the_summary(tmp_path):
    database = tmp_path / "events.db"
    with Server("--store", f"sqlite:{database}", "--seed", "2", "--rate", "100") as server:
        received: list[list[dict]] = [[] for _ in range(5)]
        closes: list[dict] = [{} for _ in range(5)]

        async def clients() -> None:
            tasks = [asyncio.create_task(_collect(server.ws, received[i], closes[i])) for i in range(5)]
            await asyncio.sleep(1.0)
            server.process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(asyncio.gather(*tasks), 20)

        asyncio.run(clients())
        code = server.process.wait(20)
    assert code == 0
    assert all(close.get("code") == 1001 for close in closes), closes  # "going away", sent by the hub
    assert all(len(events) > 10 for events in received)
    assert "chainsim:" in server.stderr and "events from" in server.stderr
    with sqlite3.connect(database) as db:
        (count,) = db.execute("SELECT count(*) FROM events").fetchone()
    ids = {event["event_id"] for events in received for event in events}
    assert count >= len(ids) > 0


def test_sigkill_then_restart_on_the_same_file_loses_nothing_committed(tmp_path):
    database = tmp_path / "events.db"
    server = Server("--store", f"sqlite:{database}", "--seed", "4", "--rate", "200")
    try:
        with httpx.Client(timeout=10) as client:
            wait_until(lambda: client.get(f"{server.api}/statistics").json()["events"] > 300)
            before = _all_pages(client, server.api, order="asc", limit="1000")
    finally:
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(10)
    # what the API served had been committed (the API reads the store): all of it must be in the file
    with Server("--store", f"sqlite:{database}", "--seed", "99", "--rate", "50") as again, \
            httpx.Client(timeout=10) as client:
        after = _all_pages(client, again.api, order="asc", limit="1000")
        ids_after = [e["event_id"] for e in after]
        assert ids_after[:len(before)] == [e["event_id"] for e in before]
        wait_until(lambda: client.get(f"{again.api}/statistics").json()["events"] > len(after))
    assert "the event ids repeat those of any earlier run with that seed" in again.stderr


def test_automatic_mode_without_a_broker_says_so_and_serves(tmp_path):
    with Server("--store", "memory", "--seed", "1", "--count", "5",
                env={"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9"}) as server, httpx.Client(timeout=10) as client:
        wait_until(lambda: client.get(f"{server.api}/statistics").json()["events"] > 0)
    assert "no Kafka broker answered at 127.0.0.1:9" in server.stderr
    assert "events go to the store only" in server.stderr


def test_automatic_mode_with_a_broker_sends_every_event_to_kafka_too(kafka_broker):
    from confluent_kafka import Consumer

    topic = "serve-auto-" + os.urandom(4).hex()
    with Server("--store", "memory", "--seed", "6", "--count", "40", "--rate", "500", "--kafka-topic", topic,
                env={"KAFKA_BOOTSTRAP_SERVERS": kafka_broker}) as server, httpx.Client(timeout=10) as client:
        wait_until(lambda: client.get(f"{server.api}/generator").json()["running"] is False)
        stored = _all_pages(client, server.api, order="asc", limit="1000")
    assert f"Kafka broker at {kafka_broker} answered" in server.stderr
    consumer = Consumer({"bootstrap.servers": kafka_broker, "group.id": topic, "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    seen: list[dict] = []
    try:
        wait_until(lambda: (m := consumer.poll(0.5)) is not None and not m.error() and seen.append(
            json.loads(m.value())) is None and len(seen) >= len(stored), timeout=60, every=0)
    finally:
        consumer.close()
    assert sorted(e["event_id"] for e in seen) == sorted(e["event_id"] for e in stored)


def test_the_postgresql_store_serves_what_it_stored(postgres, pg_table):
    with Server("--store", f"{postgres}?table={pg_table}", "--seed", "7", "--count", "50", "--rate", "500") \
            as server, httpx.Client(timeout=10) as client:
        wait_until(lambda: client.get(f"{server.api}/generator").json()["running"] is False)
        wait_until(lambda: client.get(f"{server.api}/statistics").json()["in_flight"] == 0)
        events = _all_pages(client, server.api, order="asc", limit="7")
        stats = client.get(f"{server.api}/statistics").json()
        detail = client.get(f"{server.api}/chains/{events[-1]['correlation_id']}").json()
    assert len(events) == stats["events"] > 50 and stats["chains"] == 50
    assert detail["status"] == "finished"
    import psycopg

    with psycopg.connect(postgres) as connection:
        (count,) = connection.execute(f'SELECT count(*) FROM "{pg_table}"').fetchone()
    assert count == len(events)


def test_the_sqlite_run_sink_writes_what_serve_serves(tmp_path):
    database = tmp_path / "run.db"
    result = subprocess.run([sys.executable, "-m", "engine", "--count", "100", "--seed", "1", "--start",
                             "2026-01-01T00:00:00Z", "--sink", f"sqlite:{database}", "-q"],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    events = int(result.stderr.split(" events from")[0].rsplit(" ", 1)[-1])
    with Server("--store", f"sqlite:{database}", env={"ENABLE_MOCK_EVENTS": "false"}) as server, \
            httpx.Client(timeout=10) as client:
        stats = client.get(f"{server.api}/statistics").json()
    assert stats["events"] == events and stats["chains"] == 100 and stats["in_flight"] == 0


def test_a_file_that_is_not_a_store_is_refused_clearly(tmp_path):
    bogus = tmp_path / "not-a-store.db"
    bogus.write_bytes(os.urandom(4096))
    result = subprocess.run([sys.executable, "-m", "engine", "serve", "--store", f"sqlite:{bogus}", "--port", "0"],
                            capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 2 and str(bogus.name) in result.stderr and "Traceback" not in result.stderr


def test_the_default_store_is_a_file_in_the_working_directory(tmp_path):
    with Server("--seed", "1", "--count", "3", cwd=tmp_path) as server, httpx.Client(timeout=10) as client:
        wait_until(lambda: client.get(f"{server.api}/statistics").json()["events"] > 0)
    assert Path(tmp_path, ".chainsim", "events.db").is_file()


def test_retention_deletes_the_oldest_events_in_the_background():
    with Server("--store", "memory", "--seed", "1", "--rate", "100", "--retain", "50") as server, \
            httpx.Client(timeout=10) as client:
        def trimmed() -> bool:
            generated = client.get(f"{server.api}/generator").json()["generated"]["events"]
            stats = client.get(f"{server.api}/statistics").json()
            return generated > 400 and stats["events"] < generated / 2
        wait_until(trimmed, timeout=30)
        oldest = client.get(f"{server.api}/events", params={"order": "asc", "limit": "1"}).json()["events"][0]
        assert client.get(f"{server.api}/statistics").json()["since"] == oldest["timestamp"]


def test_a_port_in_use_exits_2_with_the_reason():
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "engine", "serve", "--port", str(port), "--store", "memory"],
                                capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "--port" in result.stderr and "Traceback" not in result.stderr


def test_a_template_that_fails_while_serving_stops_the_generator_and_says_where(tmp_path):
    import textwrap

    from .conftest import FAILS_AT_INSTANCE_3

    (tmp_path / "div.yaml").write_text(textwrap.dedent(FAILS_AT_INSTANCE_3))
    with Server("--store", "memory", "--seed", "1", "--interval", "50ms", "--initial", "1", chains=tmp_path) \
            as server, httpx.Client(timeout=10) as client:
        state = wait_until(lambda: (s := client.get(f"{server.api}/generator").json())["error"] and s)
        assert state["running"] is False and "div.yaml" in state["error"]
        wait_until(lambda: client.get(f"{server.api}/statistics").json()["events"] == 3)  # those before it stay
        code = server.stop()
    assert code == 2 and "div.yaml:" in server.stderr and "Traceback" not in server.stderr


def test_the_listening_socket_is_tcp_so_responses_are_not_held_by_nagle():
    """asyncio sets TCP_NODELAY only on sockets whose protocol is IPPROTO_TCP: with 0, every keep-alive response
    waited for the client's delayed ACK (bench/queries.py saw 44 ms for /healthz)."""
    import socket

    from engine.cli.serve import _bind

    sock = _bind("127.0.0.1", 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP
    finally:
        sock.close()
