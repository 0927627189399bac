"""The command line's parser: the verbs, their flags, and the types that read flag values."""

from __future__ import annotations

import argparse
import math

from ..load.delays import parse_duration
from ..run.options import DEFAULT_RATE
from ..run.settings import DEV_INITIAL, DEV_INTERVAL
from . import graph, listing, serve, validate

VERBS = ("run", "validate", "list", "graph", "serve")

DESCRIPTION = """\
Run declarative event chains (YAML) and write their events as JSON lines.

  chainsim --chains chains/                     development mode: 20 chains at once, then one every 5 s,
                                                on the wall clock, until Ctrl-C
  chainsim --chains chains/ --count 1000 --seed 7 --start 2026-01-01T00:00:00Z
                                                exactly 1000 chains in virtual time, then exit
  chainsim validate --chains chains/            check every file, list every problem (exit 2)
  chainsim list --chains chains/                each chain with its share, steps, event types and what
                                                an instance is expected to emit, and for how long
  chainsim graph --chains chains/ --chain NAME  a chain as a state diagram (Mermaid, or --format dot)
  chainsim serve --chains chains/               generate on the wall clock into an embedded store and serve
                                                it: HTTP API, WebSocket stream, a page (chainsim[server])
"""


def duration(text: str) -> float:
    try:
        return parse_duration(float(text) if text.replace(".", "", 1).isdigit() else text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration (e.g. 500, 500ms, 1.5s, 2m, 1d)") from None


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is negative")
    return value


def shard(text: str) -> tuple[int, int]:
    index, _, count = text.partition("/")
    try:
        shard, shards = int(index), int(count)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not I/N, e.g. 0/4") from None
    if not 0 <= shard < shards:
        raise argparse.ArgumentTypeError(f"{text!r}: I must be at least 0 and below N")
    return shard, shards


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be above 0")
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number")
    return value


def names(text: str) -> tuple[str, ...]:
    parts = tuple(part.strip() for part in text.split(",") if part.strip())
    if not parts:
        raise argparse.ArgumentTypeError(f"{text!r} names no chain: give names or globs, e.g. agent_*,vault_secret")
    return parts


def rate(text: str) -> float | str:
    """A rate: a number of chain starts per second, or text with a unit ('600/min', '500 events/s')."""
    from ..run.shapes import RateError, parse_rate

    if _is_number(text):
        return positive_float(text)
    try:
        parse_rate(text, lambda: 1.0)
    except RateError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a rate, e.g. 10, 600/min, '500 events/s'") from None
    return text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def shape(text: str) -> dict[str, object]:
    """A traffic shape in inline YAML, checked against the scenario schema's `shape`."""
    from ..load import schema, yaml_marks

    try:
        value = yaml_marks.load(text).data
    except (yaml_marks.YamlError, yaml_marks.YamlErrors) as error:
        raise argparse.ArgumentTypeError(f"{text!r} is not YAML: {error}") from None
    problems = schema.check_value(value, "shape", "--shape")
    if problems:
        first = problems[0]
        raise argparse.ArgumentTypeError(f"{text!r}: {schema_path(first.path)}: {first.message}"
                                         + (f" ({first.hint})" if first.hint else ""))
    return value  # type: ignore[no-any-return]


def schema_path(path: tuple[str | int, ...]) -> str:
    from ..errors import json_path

    return json_path(path)


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--chains", default="chains", metavar="DIR",
                        help="folder of chain files (*.yaml), with shared data under DIR/data/ (default: chains)")
    common.add_argument("--debug", action="store_true", help="show Python tracebacks for internal errors")

    parser = argparse.ArgumentParser(prog="chainsim", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    verbs = parser.add_subparsers(dest="verb", metavar="{run,validate,list,graph,serve}")
    run = verbs.add_parser("run", parents=[common], help="run chains and write events (the default verb)",
                           description="Run chains and write their events.")
    add_run_flags(run)
    validate.add_arguments(verbs.add_parser(
        "validate", parents=[common], help="check every chain file; exit 2 listing every problem",
        description="Check every chain file; exit 0 when valid, 2 with every problem listed."))
    listing.add_arguments(verbs.add_parser(
        "list", parents=[common], help="each chain with its share, steps, event types and expected figures",
        description="List each chain with its share in percent, its steps and event types, and what one instance "
                    "is expected to do: events, mean and p95 of its duration."))
    graph.add_arguments(verbs.add_parser(
        "graph", parents=[common], help="each chain as a state diagram (Mermaid or Graphviz dot)",
        description="Draw each chain as a state diagram: steps, branch weights in percent, delays, goto jumps "
                    "and ends. Mermaid by default; --format dot for Graphviz."))
    serve.add_arguments(verbs.add_parser(
        "serve", parents=[common], help="generate and serve: HTTP API, WebSocket stream, page (chainsim[server])",
        description="Generate on the wall clock into an embedded store and serve it: the seed's HTTP API under "
                    "/api/event-bus, a WebSocket stream, a page at /. Development mode by default."))
    return parser


def add_run_flags(run: argparse.ArgumentParser, sink_help: str | None = None) -> None:
    """The flags of `run` (and of every verb that runs chains; `sink_help` says what --sink means there)."""
    group = run.add_argument_group("what to run")
    group.add_argument("--count", type=positive_int, metavar="N",
                       help="start exactly N chain instances, in virtual time unless --realtime, then exit")
    group.add_argument("--duration", type=duration, metavar="TIME",
                       help="stop after this much simulated time (e.g. 10m); in virtual time unless --realtime")
    group.add_argument("--seed", type=int, metavar="S",
                       help="seed of every random draw; the same files, seed and start give the same bytes "
                            "(default: a random seed, printed on stderr)")
    group.add_argument("--scenario", metavar="FILE",
                       help="run a scenario file (scenarios/*.yaml): its changes to the chains, its run settings "
                            "(flags given here win), scripted starts and faults")
    group.add_argument("--only", type=names, metavar="NAME[,NAME...]",
                       help="run only these chains (names or globs such as 'agent_*'), in their weights' proportions")
    group.add_argument("--start", metavar="ISO",
                       help="simulated start time, e.g. 2026-01-01T00:00:00Z (default: now)")
    arrivals = run.add_argument_group("when chains start")
    arrivals.add_argument("--rate", type=rate, metavar="R",
                          help=f"Poisson arrivals: R chain starts per second of simulated time, or events: "
                               f"'500 events/s' (default with --count or --duration: {DEFAULT_RATE:g})")
    arrivals.add_argument("--shape", type=shape, metavar="SPEC",
                          help="a traffic shape, as in a scenario's run.shape (inline YAML), e.g. "
                               "'ramp: {from: 1, to: 50, over: 10m}', 'daily: {peak: 20, weekend: 0.3}', "
                               "'bursts: {rate: 200, on: 5s, off: 1m}', 'stages: [{rate: 5, for: 1m}, ...]'")
    arrivals.add_argument("--interval", type=duration, metavar="TIME",
                          help=f"one chain start every TIME (default in development mode: {DEV_INTERVAL})")
    arrivals.add_argument("--initial", type=positive_int, metavar="N",
                          help=f"chains started at once at the start; 0: the first starts one gap later "
                               f"(default: {DEV_INITIAL} in development mode, else 1)")
    scale = run.add_argument_group("past one core")
    scale.add_argument("--workers", type=positive_int, default=1, metavar="N",
                       help="run N processes that share the run's chain instances, and merge their events in order: "
                            "the same output as one process (on the wall clock, the run begins once all are ready)")
    scale.add_argument("--shard", type=shard, metavar="I/N",
                       help="run only shard I of N (0 <= I < N): N machines together produce exactly the "
                            "events of one run (merge by timestamp)")
    clock = run.add_argument_group("clock")
    clock.add_argument("--realtime", action="store_true",
                       help="pace a finite run on the wall clock (development mode always does)")
    clock.add_argument("--speed", type=positive_float, metavar="F",
                       help="with the wall clock, run simulated time F times faster (default: 1)")
    output = run.add_argument_group("output")
    output.add_argument("--output", "-o", metavar="FILE", help="write JSON lines to FILE instead of stdout")
    output.add_argument("--sink", action="append", default=[], metavar="SPEC",
                        help=sink_help or "send events to a sink, repeatable: jsonl:- (stdout), jsonl:FILE, "
                             "kafka://HOST:PORT/TOPIC, postgresql://USER@HOST:PORT/DBNAME?table=events, "
                             "sqlite:FILE")
    output.add_argument("--quiet", "-q", action="store_true",
                        help="print only the one-line summary on stderr, and no progress line")
