"""The command line: `run` (the default verb), `validate` and `list`. Errors map to exit codes here only.

Events go to stdout (or the chosen sinks); logs, errors and the summary go to stderr.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import signal
import sys
import time
from collections.abc import Sequence
from typing import Any

import attrs

from .delays import parse_duration
from .errors import ChainError, RunError, UsageError, json_path
from .options import DEFAULT_RATE

EXIT_OK, EXIT_INTERNAL, EXIT_INVALID = 0, 1, 2
EXIT_INTERRUPTED = 130  # the shell's code for a command ended by Ctrl-C
VERBS = ("run", "validate", "list")
DEV_INITIAL, DEV_INTERVAL = 20, "5s"
GO_LEAD_S = 0.1  # wall clock with workers: the run begins this long after the last worker is ready
MIN_INTERVAL_MS, MAX_RATE = 0.001, 1_000_000.0
FIRST_MS, LAST_MS = -30610224000000, 253402300799999  # 1000-01-01 and 9999-12-31: four-digit years

DESCRIPTION = """\
Run declarative event chains (YAML) and write their events as JSON lines.

  chainsim --chains chains/                     development mode: 20 chains at once, then one every 5 s,
                                                on the wall clock, until Ctrl-C
  chainsim --chains chains/ --count 1000 --seed 7 --start 2026-01-01T00:00:00Z
                                                exactly 1000 chains in virtual time, then exit
  chainsim validate --chains chains/            check every file, list every problem (exit 2)
  chainsim list --chains chains/                each chain with its share, steps and event types
"""


def _duration(text: str) -> float:
    try:
        return parse_duration(float(text) if text.replace(".", "", 1).isdigit() else text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration (e.g. 500, 500ms, 1.5s, 2m)") from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is negative")
    return value


def _shard(text: str) -> tuple[int, int]:
    index, _, count = text.partition("/")
    try:
        shard, shards = int(index), int(count)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not I/N, e.g. 0/4") from None
    if not 0 <= shard < shards:
        raise argparse.ArgumentTypeError(f"{text!r}: I must be at least 0 and below N")
    return shard, shards


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be above 0")
    return value


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--chains", default="chains", metavar="DIR",
                        help="folder of chain files (*.yaml), with shared data under DIR/data/ (default: chains)")
    common.add_argument("--debug", action="store_true", help="show Python tracebacks for internal errors")

    parser = argparse.ArgumentParser(prog="chainsim", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    verbs = parser.add_subparsers(dest="verb", metavar="{run,validate,list}")
    run = verbs.add_parser("run", parents=[common], help="run chains and write events (the default verb)",
                           description="Run chains and write their events.")
    _add_run_flags(run)
    verbs.add_parser("validate", parents=[common], help="check every chain file; exit 2 listing every problem",
                     description="Check every chain file; exit 0 when valid, 2 with every problem listed.")
    verbs.add_parser("list", parents=[common], help="each chain with its share, steps and event types",
                     description="List each chain with its share in percent, its steps and event types.")
    return parser


def _add_run_flags(run: argparse.ArgumentParser) -> None:
    group = run.add_argument_group("what to run")
    group.add_argument("--count", type=_positive_int, metavar="N",
                       help="start exactly N chain instances, in virtual time unless --realtime, then exit")
    group.add_argument("--duration", type=_duration, metavar="TIME",
                       help="stop after this much simulated time (e.g. 10m); in virtual time unless --realtime")
    group.add_argument("--seed", type=int, metavar="S",
                       help="seed of every random draw; the same files, seed and start give the same bytes "
                            "(default: a random seed, printed on stderr)")
    group.add_argument("--start", metavar="ISO",
                       help="simulated start time, e.g. 2026-01-01T00:00:00Z (default: now)")
    arrivals = run.add_argument_group("when chains start")
    arrivals.add_argument("--rate", type=_positive_float, metavar="R",
                          help=f"Poisson arrivals: R chain starts per second of simulated time "
                               f"(default with --count or --duration: {DEFAULT_RATE:g})")
    arrivals.add_argument("--interval", type=_duration, metavar="TIME",
                          help=f"one chain start every TIME (default in development mode: {DEV_INTERVAL})")
    arrivals.add_argument("--initial", type=_positive_int, metavar="N",
                          help=f"chains started at once at the start; 0: the first starts one gap later "
                               f"(default: {DEV_INITIAL} in development mode, else 1)")
    scale = run.add_argument_group("past one core")
    scale.add_argument("--workers", type=_positive_int, default=1, metavar="N",
                       help="run N processes that share the run's chain instances, and merge their events in order: "
                            "the same output as one process (on the wall clock, the run begins once all are ready)")
    scale.add_argument("--shard", type=_shard, metavar="I/N",
                       help="run only shard I of N (0 <= I < N): N machines together produce exactly the "
                            "events of one run (merge by timestamp)")
    scale.add_argument("--keyed", action="store_true", help=argparse.SUPPRESS)  # worker protocol
    scale.add_argument("--claims-fd", type=int, help=argparse.SUPPRESS)  # worker protocol: workers.FileClaims
    scale.add_argument("--await-go", action="store_true", help=argparse.SUPPRESS)  # worker protocol
    clock = run.add_argument_group("clock")
    clock.add_argument("--realtime", action="store_true",
                       help="pace a finite run on the wall clock (development mode always does)")
    clock.add_argument("--speed", type=_positive_float, metavar="F",
                       help="with the wall clock, run simulated time F times faster (default: 1)")
    output = run.add_argument_group("output")
    output.add_argument("--output", "-o", metavar="FILE", help="write JSON lines to FILE instead of stdout")
    output.add_argument("--sink", action="append", default=[], metavar="SPEC",
                        help="send events to a sink, repeatable: jsonl:- (stdout), jsonl:FILE, "
                             "kafka://HOST:PORT/TOPIC, postgresql://USER@HOST:PORT/DBNAME?table=events")
    output.add_argument("--quiet", "-q", action="store_true", help="print only the one-line summary on stderr")


_gc_paused = False  # console() turned the cycle collector off for the start-up


def console() -> int:
    """The `chainsim` command and `python -m engine`: main() with the cycle collector kept out of the way.

    While the command starts (imports, loading and checking the chains) nothing it builds is garbage
    worth collecting, so the collector is off until settle_memory() starts the run (validate never turns
    it on). At exit everything is frozen first: CPython's shutdown otherwise runs full collections over
    every object, about 0.13 s on the development VM, more than the rest of `validate` after the imports.
    """
    global _gc_paused
    if gc.isenabled():
        gc.disable()
        _gc_paused = True
    try:
        return main()
    except KeyboardInterrupt:  # Ctrl-C before a run has begun (a run itself stops cleanly on it)
        print("chainsim: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        gc.freeze()


def main(argv: Sequence[str] | None = None) -> int:
    """The command line, for programs and tests; `chainsim` and `python -m engine` run it through console()."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if not args_list or args_list[0] not in (*VERBS, "-h", "--help"):
        args_list.insert(0, "run")
    args = build_parser().parse_args(args_list)
    try:
        if args.verb == "validate":
            return _validate(args)
        if args.verb == "list":
            return _list(args)
        return _run(args)
    except ChainError as error:
        print(error.report(), file=sys.stderr)
        return EXIT_INVALID
    except (UsageError, RunError) as error:
        print(f"chainsim: error: {error}", file=sys.stderr)
        return EXIT_INVALID
    except Exception as error:
        if args.debug:
            raise
        print(f"chainsim: internal error: {type(error).__name__}: {error} (run with --debug for details)",
              file=sys.stderr)
        return EXIT_INTERNAL


def _validate(args: argparse.Namespace) -> int:
    from .loader import load_catalog

    catalog = load_catalog(args.chains)
    names = len(catalog.chains)
    print(f"{catalog.directory}: {names} chain{'s' if names != 1 else ''} valid", file=sys.stderr)
    return EXIT_OK


def _list(args: argparse.Namespace) -> int:
    from .listing import describe_catalog
    from .loader import load_catalog

    print(describe_catalog(load_catalog(args.chains)))
    return EXIT_OK


def _options(args: argparse.Namespace) -> Any:
    from .events import parse_timestamp
    from .options import RunOptions

    if args.rate is not None and args.interval is not None:
        raise UsageError("give --rate (Poisson arrivals) or --interval (fixed gap), not both")
    # Above a million chain starts per second, arrivals would stop moving simulated time forward.
    if args.interval is not None and args.interval < MIN_INTERVAL_MS:
        raise UsageError(f"--interval must be at least {MIN_INTERVAL_MS * 1000:g} µs (a million chains per second)")
    if args.rate is not None and args.rate > MAX_RATE:
        raise UsageError(f"--rate must be at most {MAX_RATE:,.0f} chain starts per second")
    finite = args.count is not None or args.duration is not None
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    realtime = args.realtime or not finite
    if args.start is None:
        start_ms = int(time.time() * 1000)
    else:
        try:
            start_ms = parse_timestamp(args.start)
        except (ValueError, OverflowError):
            raise UsageError(f"--start {args.start!r} is not an ISO 8601 time, e.g. 2026-01-01T00:00:00Z") from None
        if not FIRST_MS <= start_ms <= LAST_MS:
            raise UsageError(f"--start {args.start!r} is outside the years 1000 to 9999 (RFC 3339 timestamps)")
    rate, interval = args.rate, args.interval
    if rate is None and interval is None:
        rate, interval = (DEFAULT_RATE, None) if finite else (None, parse_duration(DEV_INTERVAL))
    initial = args.initial if args.initial is not None else (1 if finite else DEV_INITIAL)
    duration = None if args.duration is None else round(args.duration)
    if args.speed is not None and not realtime:
        raise UsageError("--speed paces the wall clock: add --realtime (a --count run is in virtual time)")
    return RunOptions(seed=seed, start_ms=start_ms, count=args.count, rate=rate, interval_ms=interval,
                      initial=initial, realtime=realtime, speed=args.speed or 1.0, duration_ms=duration,
                      shard=args.shard or (0, 1))


def _open_sinks(args: argparse.Namespace) -> Any:
    from .sinks import Fanout, open_sink

    specs = list(args.sink)
    if args.output:
        specs.append(f"jsonl:{args.output}")
    if not specs:
        specs = ["jsonl:-"]
    try:
        sinks = [open_sink(spec) for spec in specs]
    except OSError as error:
        raise UsageError(f"cannot open sink: {error}") from None
    return sinks[0] if len(sinks) == 1 else Fanout(sinks)


def _run(args: argparse.Namespace) -> int:
    options = _options(args)
    if args.workers > 1:
        return _run_workers(args, options)
    from .loader import load_catalog
    from .payload import RenderError
    from .simulation import Simulation
    from .summary import summary

    catalog = load_catalog(args.chains)
    if args.keyed:
        from .workers import KeyedSink

        sink: Any = KeyedSink(sys.stdout.buffer, None)  # type: ignore[arg-type]
        sink.ready()  # tells the parent this worker has loaded the files
        if args.await_go:
            line = sys.stdin.readline().split()
            if len(line) != 2:
                return EXIT_OK  # the parent went away before the run began
            options = attrs.evolve(options, wall_origin=float(line[0]), start_ms=int(line[1]))
    else:
        sink = _open_sinks(args)
    if options.realtime and args.start is None and options.wall_origin is None:
        options = _starting_now(options)
    claims = None
    if args.claims_fd is not None:
        from .workers import FileClaims

        claims = FileClaims(args.claims_fd)
    simulation = Simulation(catalog, options, sink, claims=claims)
    settle_memory()
    if args.keyed:
        sink.scheduler = simulation.scheduler
    began = time.perf_counter()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def on_signal(number: int, frame: Any) -> None:
        simulation.stop()
        for sig in previous:  # a second signal stops at once, the system's way (no traceback)
            signal.signal(sig, signal.SIG_DFL)

    for sig in previous:
        signal.signal(sig, on_signal)
    failure: RunError | None = None
    try:
        simulation.run()
    except RenderError as error:
        failure = RunError(
            f"{catalog.locate(error.file, error.path)}: {json_path(error.path)}: template error at run time: {error}",
            "the events before this one were written; fix the template and run again",
        )
        if args.keyed:
            sink.stop_here()  # tells the parent where the run stops, as one process would
    except BrokenPipeError:
        _silence_stdout()
    except (OSError, RunError) as error:  # a sink that cannot write (disk full, a broker gone...)
        failure = _sink_failure(error)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        try:
            sink.close()
        except BrokenPipeError:
            _silence_stdout()
        except (OSError, RunError) as error:
            failure = failure or _sink_failure(error)
    if args.keyed:
        from .workers import stats_line

        print(stats_line(simulation.stats), file=sys.stderr)
    else:
        print(summary(simulation.stats, options, time.perf_counter() - began, verbose=not args.quiet),
              file=sys.stderr)
    if failure is not None:
        raise failure
    return EXIT_OK


def _starting_now(options: Any) -> Any:
    """Wall clock without --start: the run starts now, once the chains are loaded, so that timestamps
    are the wall time the events leave at (not behind it by the loading time)."""
    start_ms = int(time.time() * 1000)
    return attrs.evolve(options, start_ms=start_ms, wall_origin=start_ms / 1000)


def settle_memory() -> None:
    """Before a run: fewer, shorter pauses of Python's cycle collector (`gc`).

    Everything loaded so far (modules, Faker's tables, the compiled chains) lives for the whole run:
    gc.freeze() moves it out of the collector's sight, so a full collection no longer scans it (36 ms
    pauses seen here, which a wall-clock run shows as lateness). Events are short-lived dicts and tuples
    that CPython recycles through free lists, which the collector still counts as new objects: at the
    default threshold of 700 it ran every ~200 events. Chain instances hold no reference cycles (they
    are freed as soon as they end), so collecting every 50,000 allocations only delays rare garbage.
    The collector, off since console() began, is on again from here. What loading left as cyclic garbage
    (about half a MiB) is frozen with the rest instead of collected: a full collection here would add
    20-40 ms to the start of every run, for memory that stays the same whatever the run's length.
    """
    global _gc_paused
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    if _gc_paused:
        _gc_paused = False
        gc.enable()


def _sink_failure(error: Exception) -> RunError:
    if isinstance(error, RunError):
        return error
    return RunError(f"cannot write events: {getattr(error, 'strerror', None) or error}",
                    "the events before it were handed to the sink")


def _run_workers(args: argparse.Namespace, options: Any) -> int:
    from .options import Stats
    from .summary import summary
    from .workers import run_workers, spawn_workers, stop_workers

    if args.shard is not None:
        raise UsageError("give --workers or --shard, not both")
    # The workers load and check the chain files; the parent does not (on two cores, a third process
    # loading them would only slow the workers down). It opens the sinks once every worker is ready, so
    # invalid files leave the output alone.
    workers = spawn_workers(args.chains, options, args.workers)
    try:
        if not workers.ready():
            stop_workers(workers)
            for line in workers.errors():
                print(line, file=sys.stderr)
            return EXIT_INVALID
        sink = _open_sinks(args)
    except BaseException:
        stop_workers(workers)
        raise
    if options.realtime:  # every worker is ready: the run begins in a moment, for all at once
        origin, start_ms = time.time() + GO_LEAD_S, options.start_ms
        if args.start is None:  # the simulated start is that moment too, in whole milliseconds
            start_ms = round(origin * 1000)
            origin = start_ms / 1000
        options = attrs.evolve(options, start_ms=start_ms, wall_origin=origin)
        workers.go(origin, start_ms)
    settle_memory()
    began = time.perf_counter()
    try:
        stats, errors = run_workers(workers, options, sink)
    except BrokenPipeError:  # the workers were stopped on the way out
        _silence_stdout()
        stats, errors = Stats(), []
    except (OSError, RunError) as error:
        stats, errors = Stats(), [f"chainsim: error: {_sink_failure(error)}"]
    try:
        sink.close()
    except BrokenPipeError:
        _silence_stdout()
    except (OSError, RunError) as error:
        errors = errors or [f"chainsim: error: {_sink_failure(error)}"]
    print(summary(stats, options, time.perf_counter() - began, verbose=not args.quiet), file=sys.stderr)
    for line in errors:
        print(line, file=sys.stderr)
    return EXIT_INVALID if errors else EXIT_OK


def _silence_stdout() -> None:
    """The reader went away (`| head`): stop writing, and keep Python quiet about stdout at exit."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
