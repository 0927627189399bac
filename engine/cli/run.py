"""`chainsim run` (the default verb): run the chains and write their events to the sinks.

Events go to stdout (or the chosen sinks); the summary, and a progress line on a terminal, go to stderr.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from ..scenarios.apply import Applied

from ..envelope.fields import FIRST_MS, LAST_MS, parse_timestamp
from ..errors import ChainsimError, RunError, SinkError, UsageError, command_text
from ..hints import hint
from ..load.delays import parse_duration
from ..process import settle_memory, silence_stdout, stopping_on_signals
from ..run.options import RunOptions, Stats
from .errors import EXIT_INVALID, EXIT_OK
from .parser import DEV_INITIAL, DEV_INTERVAL
from .progress import Progress, Reading

GO_LEAD_S = 0.1  # wall clock with workers: the run begins this long after the last worker is ready
MIN_INTERVAL_MS, MAX_RATE = 0.001, 1_000_000.0


def run_options(args: argparse.Namespace, scenario: Applied | None = None) -> RunOptions:
    """The run the flags ask for, over a scenario's run settings (a flag wins over the scenario's setting);
    UsageError for settings that do not go together."""
    base: dict[str, Any] = scenario.run if scenario is not None else {}
    flagged = args.rate is not None or args.interval is not None or args.shape is not None
    if flagged:  # the command line's arrivals replace the scenario's
        base = {key: value for key, value in base.items() if key not in ("rate", "interval", "shape")}
    rate = args.rate if args.rate is not None else base.get("rate")
    interval = args.interval if args.interval is not None else _duration(base.get("interval"))
    shape = args.shape if args.shape is not None else base.get("shape")
    if sum(value is not None for value in (rate, interval, shape)) > 1:
        raise UsageError("give --rate (Poisson arrivals), --interval (fixed gap) or --shape, not more than one")
    # Above a million chain starts per second, arrivals would stop moving simulated time forward.
    if interval is not None and interval < MIN_INTERVAL_MS:
        raise UsageError(f"--interval must be at least {MIN_INTERVAL_MS * 1000:g} µs (a million chains per second)")
    if isinstance(rate, int | float) and rate > MAX_RATE:
        raise UsageError(f"--rate must be at most {MAX_RATE:,.0f} chain starts per second")
    count = args.count if args.count is not None else base.get("count")
    duration = args.duration if args.duration is not None else _duration(base.get("duration"))
    script_only = scenario is not None and bool(scenario.starts) and rate is None and interval is None and \
        shape is None
    finite = count is not None or duration is not None or script_only or (shape is not None and "stages" in shape)
    seed = args.seed if args.seed is not None else base.get("seed")
    if seed is None:
        seed = random.SystemRandom().randrange(2**32)
    realtime = args.realtime or not finite
    start = args.start if args.start is not None else base.get("start")
    if start is None:
        start_ms = int(time.time() * 1000)
    else:
        try:
            start_ms = parse_timestamp(str(start))
        except (ValueError, OverflowError):
            raise UsageError(f"--start {start!r} is not an ISO 8601 time, e.g. 2026-01-01T00:00:00Z") from None
        if not FIRST_MS <= start_ms <= LAST_MS:
            raise UsageError(f"--start {start!r} is outside the years 1000 to 9999 (RFC 3339 timestamps)")
    if rate is None and interval is None and shape is None and not script_only and not finite:
        interval = parse_duration(DEV_INTERVAL)
    initial = args.initial if args.initial is not None else base.get("initial", 1 if finite else DEV_INITIAL)
    if args.speed is not None and not realtime:
        raise UsageError("--speed paces the wall clock: add --realtime (a --count run is in virtual time)")
    return RunOptions(seed=seed, start_ms=start_ms, count=count, rate=rate, interval_ms=interval,
                      initial=initial, realtime=realtime, speed=args.speed or 1.0,
                      duration_ms=None if duration is None else round(duration), shard=args.shard or (0, 1),
                      only=args.only or (), shape=shape)


def _duration(value: Any) -> float | None:
    return None if value is None else parse_duration(value)


def open_sinks(args: argparse.Namespace) -> Any:
    """The sinks of `--sink` and `--output` (stdout when there are none), as one sink."""
    from ..sinks import open_sink
    from ..sinks.fanout import fan_out

    specs = list(args.sink)
    if args.output:
        specs.append(f"jsonl:{args.output}")
    return fan_out([open_sink(spec) for spec in specs or ["jsonl:-"]])


def close_sink(sink: Any) -> RunError | None:
    """Close the sink; a reader that went away (`| head`) is no error; a sink that fails is one RunError."""
    try:
        sink.close()
    except BrokenPipeError:
        silence_stdout()
    except (OSError, RunError) as error:
        return sink_failure(error)
    return None


def sink_failure(error: Exception) -> RunError:
    if isinstance(error, RunError):
        return error
    return SinkError(f"cannot write events: {getattr(error, 'strerror', None) or error}", hint("sink", "write"))


def run(args: argparse.Namespace) -> int:
    applied = None
    if args.scenario is not None:  # the scenario's run settings are needed first (with --workers too)
        from ..load.catalog import load_catalog
        from ..scenarios.load import load_scenario

        applied = load_scenario(args.scenario, load_catalog(args.chains))
    options = run_options(args, applied)
    if args.workers > 1:
        return _run_workers(args, options)
    from ..load.catalog import load_catalog
    from ..run.simulation import Simulation
    from ..scenarios.run import simulation as scenario_simulation
    from .summary import summary

    catalog = applied.catalog if applied is not None else load_catalog(args.chains)
    sink = open_sinks(args)
    if options.realtime and args.start is None and (applied is None or "start" not in applied.run):
        options = starting_now(options)
    simulation = scenario_simulation(applied, options, sink) if applied is not None else \
        Simulation(catalog, options, sink)
    settle_memory()
    began = time.perf_counter()
    failure: ChainsimError | None = None

    def reading() -> Reading:
        stats, scheduler = simulation.stats, simulation.scheduler
        return Reading(stats.events, stats.started, max(len(scheduler) - 1, 0), scheduler.now)

    try:
        with stopping_on_signals(simulation.stop), Progress(reading, options, sys.stderr, not args.quiet):
            simulation.run()
    except BrokenPipeError:
        silence_stdout()
    except (OSError, RunError) as error:  # a template that failed, a sink that cannot write (disk full...)
        failure = sink_failure(error)
    finally:
        closing = close_sink(sink)  # always, also after a failure: the events before it are written
        failure = failure or closing
    print(summary(simulation.stats, options, time.perf_counter() - began, verbose=not args.quiet), file=sys.stderr)
    if failure is not None:
        raise failure
    return EXIT_OK


def starting_now(options: RunOptions) -> RunOptions:
    """Wall clock without --start: the run starts now, once the chains are loaded, so that timestamps
    are the wall time the events leave at (not behind it by the loading time)."""
    start_ms = int(time.time() * 1000)
    return attrs.evolve(options, start_ms=start_ms, wall_origin=start_ms / 1000)


def _run_workers(args: argparse.Namespace, options: RunOptions) -> int:
    from ..parallel.workers import run_workers, spawn_workers, stop_workers
    from .summary import summary

    if args.shard is not None:
        raise UsageError("give --workers or --shard, not both")
    # The workers load and check the chain files; the parent does not (on two cores, a third process
    # loading them would only slow the workers down). It opens the sinks once every worker is ready, so
    # invalid files leave the output alone.
    workers = spawn_workers(args.chains, options, args.workers, args.scenario)
    try:
        if not workers.ready():
            stop_workers(workers)
            for line in workers.errors():
                print(line, file=sys.stderr)
            return EXIT_INVALID
        sink = open_sinks(args)
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
    merge = workers.merge

    def reading() -> Reading:
        return Reading(merge.passed, None, None, options.start_ms + merge.reached if merge.passed else None)

    try:
        with Progress(reading, options, sys.stderr, not args.quiet):
            stats, errors = run_workers(workers, options, sink)
    except BrokenPipeError:  # the workers were stopped on the way out
        silence_stdout()
        stats, errors = Stats(), []
    except (OSError, RunError) as error:
        stats, errors = Stats(), [command_text(sink_failure(error))]
    closing = close_sink(sink)
    if closing is not None and not errors:
        errors = [command_text(closing)]
    print(summary(stats, options, time.perf_counter() - began, verbose=not args.quiet), file=sys.stderr)
    for line in errors:
        print(line, file=sys.stderr)
    return EXIT_INVALID if errors else EXIT_OK
