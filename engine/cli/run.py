"""`chainsim run` (the default verb): run the chains and write their events to the sinks.

Events go to stdout (or the chosen sinks); the summary, and a progress line on a terminal, go to stderr.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from ..scenarios.apply import Applied

from ..errors import ChainsimError, RunError, SinkError, UsageError, command_text
from ..hints import hint
from ..process import settle_memory, silence_stdout, stopping_on_signals
from ..run.options import RunOptions, Stats
from ..run.settings import Settings, resolve
from .errors import EXIT_INVALID, EXIT_OK
from .progress import Progress, Reading

GO_LEAD_S = 0.1  # wall clock with workers: the run begins this long after the last worker is ready


def run_options(args: argparse.Namespace, scenario: Applied | None = None) -> RunOptions:
    """The run the flags ask for, over a scenario's run settings (a flag wins over the scenario's setting)."""
    given = Settings(seed=args.seed, start=args.start, count=args.count, duration_ms=args.duration, rate=args.rate,
                     interval_ms=args.interval, shape=args.shape, initial=args.initial, realtime=args.realtime,
                     speed=args.speed, shard=args.shard, only=args.only or ())
    return resolve(given, scenario.run if scenario is not None else None, bool(scenario and scenario.starts))


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
    if any(spec.startswith("sqlite:") for spec in args.sink):
        # The store records when each chain instance finishes (Sink.end_chain), which the workers' merge of
        # lines does not carry: every chain would stay "in flight".
        raise UsageError("the sqlite sink runs in one process: drop --workers (it writes about 30,000 events/s)")
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
