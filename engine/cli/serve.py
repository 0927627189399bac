"""`chainsim serve`: generate on the wall clock into an embedded store and serve it: the HTTP API, the WebSocket
stream and a page (engine/server/). Needs the `server` extra: pip install 'chainsim[server]'.

It prints one line with the URL it listens on (stderr), logs requests, and stops cleanly on Ctrl-C or SIGTERM:
stream clients get a close frame, the store commits what is queued, the summary is printed, exit 0.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import os
import socket
import sys
import time
from collections.abc import Iterator
from typing import Any

from ..errors import UsageError
from .errors import EXIT_OK

INSTALL = "pip install 'chainsim[server]'"
DEFAULT_STORE = "sqlite:.chainsim/events.db"
# engine/server's defaults, written here so that building the parser imports no server module (tests/test_serve.py
# checks they agree): the hub's CLIENT_QUEUE and MAX_CLIENTS, automatic mode's DEFAULT_TOPIC.
CLIENT_QUEUE, MAX_CLIENTS, DEFAULT_TOPIC = 1000, 256, "chainsim.events"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from .parser import add_run_flags, duration, positive_int

    add_run_flags(parser, sink_help="also send events to a sink, repeatable: auto (the default: Kafka too when "
                                    "a broker answers, see --kafka), kafka://HOST:PORT/TOPIC, postgresql://..., "
                                    "jsonl:FILE")
    group = parser.add_argument_group("server")
    group.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default 127.0.0.1; any other needs --token)")
    group.add_argument("--port", type=int, default=8080, help="port (default 8080; 0: a free one, printed)")
    group.add_argument("--store", default=DEFAULT_STORE, metavar="SPEC",
                       help=f"where events are kept: sqlite:PATH (default {DEFAULT_STORE}), memory (gone at exit), "
                            "or postgresql://USER@HOST:PORT/DBNAME[?table=events]")
    group.add_argument("--retain", type=positive_int, metavar="N",
                       help="keep at most N events, the oldest deleted in the background (default 1,000,000)")
    group.add_argument("--retain-for", type=duration, metavar="TIME",
                       help="delete events older than TIME before the newest, e.g. 24h (default: no limit)")
    group.add_argument("--token", default=None,
                       help="token the control endpoints (generator start/stop) ask for (or CHAINSIM_TOKEN); "
                            "required to listen beyond loopback")
    group.add_argument("--cors", action="append", default=[], metavar="ORIGIN",
                       help="let pages from ORIGIN call the API (repeatable; default: none)")
    group.add_argument("--max-clients", type=positive_int, default=MAX_CLIENTS, metavar="N",
                       help=f"WebSocket stream clients at once (default {MAX_CLIENTS}); more are refused (1013)")
    group.add_argument("--client-queue", type=positive_int, default=CLIENT_QUEUE, metavar="N",
                       help=f"messages a slow stream client may fall behind by before it loses the oldest "
                            f"(default {CLIENT_QUEUE})")
    group.add_argument("--ping", type=duration, default=20_000, metavar="TIME",
                       help="WebSocket ping interval; a client that does not answer within it is closed "
                            "(default 20s)")
    group.add_argument("--kafka", metavar="HOST:PORT",
                       help="automatic mode's broker (default: KAFKA_BOOTSTRAP_SERVERS)")
    group.add_argument("--kafka-topic", default=DEFAULT_TOPIC, metavar="TOPIC",
                       help=f"automatic mode's topic (default {DEFAULT_TOPIC})")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(args: argparse.Namespace) -> int:
    try:
        import starlette  # noqa: F401
        import uvicorn
    except ImportError:
        raise UsageError(f"serve needs the server extra: {INSTALL}") from None
    token = args.token or os.environ.get("CHAINSIM_TOKEN") or None
    if not _loopback(args.host) and token is None:
        raise UsageError(f"--host {args.host} listens beyond this machine: give --token (or CHAINSIM_TOKEN) so "
                         "that only you can start and stop the generator")
    if args.workers != 1 or args.shard is not None:
        raise UsageError("serve runs one process: --workers and --shard are for run")
    if args.output:
        raise UsageError("serve keeps events in --store (and --sink): --output is for run")
    bus, notes = _bus(args, token)
    sock = _bind(args.host, args.port)
    from ..server.app import create_app

    config = uvicorn.Config(create_app(bus), log_level="warning" if args.quiet else "info", access_log=not args.quiet,
                            ws="websockets-sansio", ws_ping_interval=args.ping / 1000, ws_ping_timeout=args.ping / 1000,
                            # no per-message deflate: it would compress every message again for each client
                            ws_max_size=65_536, ws_per_message_deflate=False, lifespan="on",
                            timeout_graceful_shutdown=5, h11_max_incomplete_event_size=16_384)
    server = _server(config, bus)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    for note in notes:
        print(f"chainsim: {note}", file=sys.stderr)
    server.url = f"http://{shown}:{port}/"
    from ..process import settle_memory

    settle_memory()  # the cycle collector on again (the command starts with it off), with fewer, shorter pauses
    began = time.perf_counter()
    import asyncio

    with _signals_kept():
        asyncio.run(server.serve(sockets=[sock]))
    if server.failure is not None:
        raise server.failure
    from .summary import summary

    options = bus.generator.options
    if options is not None:
        stats = bus.generator.totals
        print(summary(stats, options, time.perf_counter() - began, verbose=not args.quiet), file=sys.stderr)
    return EXIT_OK


@contextlib.contextmanager
def _signals_kept() -> Iterator[None]:
    """uvicorn shuts down gracefully on SIGINT and SIGTERM, then raises the signal again for the handler it found:
    a handler that only notes it, so that the summary is printed and the exit code is 0."""
    import signal

    caught: list[int] = []
    saved = {number: signal.signal(number, lambda sig, frame: caught.append(sig))
             for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in saved.items():
            signal.signal(number, handler)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio turns Nagle's algorithm off only on sockets that say they are TCP; with it on,
    # a response's body (uvicorn writes headers and body apart) waited for the client's delayed ACK, ~40 ms.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port}: {error.strerror or error}",
                         "give another --port (0 picks a free one)") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def _bus(args: argparse.Namespace, token: str | None) -> tuple[Any, list[str]]:
    """The EventBus the flags ask for, and the lines that say what it chose."""
    from ..load.catalog import load_catalog
    from ..server.auto import choose
    from ..server.bus import DEFAULT_RETAIN, EventBus, Retention
    from ..server.hub import Hub
    from ..sinks import open_sink
    from ..store import open_store
    from .run import run_options

    notes: list[str] = []
    catalog = load_catalog(args.chains)
    applied = None
    if args.scenario is not None:
        from ..scenarios.load import load_scenario

        applied = load_scenario(args.scenario, catalog)
    args.realtime = True
    options = run_options(args, applied)  # checks the run flags as `run` does
    generate = os.environ.get("ENABLE_MOCK_EVENTS", "").strip().lower() not in ("false", "0", "no", "off")
    specs = list(args.sink) or ["auto"]
    if "auto" in specs:
        specs.remove("auto")
        choice = choose(args.kafka, args.kafka_topic, os.environ)
        specs += choice.specs
        notes.append(f"automatic mode: {choice.reason}")
    sinks = [open_sink(spec) for spec in specs]
    store = open_store(args.store)
    held = store.last_seq()
    if held and args.seed is not None:
        notes.append(f"the store holds events already: with --seed {args.seed} the event ids repeat those of any "
                     "earlier run with that seed (give another --seed, or a fresh --store, for ids of their own)")
    settings: dict[str, Any] | None = None
    if generate:
        settings = {"continuous": True, "interval_ms": options.interval_ms, "initial_chains": options.initial,
                    "rate": options.rate, "shape": options.shape, "count": options.count,
                    "duration_ms": options.duration_ms}
        if args.start is not None:
            settings["start"] = options.start_ms
        what = "development mode: 20 chains at once, then one every 5 s" if _development(args, applied) else \
            "as the flags say"
        notes.append(f"generating ({what}; seed {options.seed})")
    else:
        notes.append("ENABLE_MOCK_EVENTS=false: serving what the store holds, generating nothing")
    retention = Retention(events=args.retain if args.retain is not None else DEFAULT_RETAIN,
                          for_ms=None if args.retain_for is None else round(args.retain_for))
    hub = Hub(client_queue=args.client_queue, max_clients=args.max_clients)
    bus = EventBus(catalog, store, store_spec=args.store, hub=hub, extra_sinks=sinks, scenario=args.scenario,
                   seed=options.seed, speed=args.speed, only=args.only or (), generator_settings=settings,
                   retention=retention, token=token, cors=args.cors)
    return bus, notes


def _development(args: argparse.Namespace, applied: Any) -> bool:
    given = (args.count, args.duration, args.rate, args.interval, args.shape, args.initial)
    return all(value is None for value in given) and applied is None


def _server(config: Any, bus: Any) -> Any:
    """uvicorn's server, with the URL printed once it listens, and the generator stopped and the stream closed
    (1001) before uvicorn closes the connections on shutdown (uvicorn itself would close them with 1012)."""
    import uvicorn

    class Server(uvicorn.Server):
        url = ""
        failure: BaseException | None = None

        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            if self.started:
                print(f"chainsim: serving {self.url} (API {self.url}api/event-bus/, stream "
                      f"ws{self.url[4:]}api/event-bus/stream, store {bus.store_spec})", file=sys.stderr, flush=True)

        async def shutdown(self, sockets: Any = None) -> None:
            try:
                await bus.generator.stop()
            except Exception as error:  # a template failed on the way: reported at exit
                self.failure = error
            await bus.hub.close()
            await super().shutdown(sockets)

    return Server(config)
