"""One `--workers` worker: `python -m engine.parallel.child`, started by engine/parallel/workers.py.

Its job comes whole as the first line on stdin (JSON: the chains folder, the run's `RunOptions`, its share of
the instances). It loads and checks the chain files, writes its events behind their keys on stdout
(engine/parallel/keyed.py), says what went wrong on stderr as the command would, and ends with its counts.
"""

from __future__ import annotations

import json
import sys

import attrs

from ..errors import ChainsimError, LoadError, TemplateRunError, command_text
from ..process import settle_memory, silence_stdout, stopping_on_signals
from ..run.arrivals import shard
from ..run.options import RunOptions
from .claims import FileClaims, claimed
from .keyed import KeyedSink, stats_line

EXIT_OK, EXIT_INVALID = 0, 2


def main() -> int:
    task = json.loads(sys.stdin.readline())
    options = RunOptions.from_json(json.dumps(task["options"]))
    from ..load.catalog import load_catalog
    from ..run.simulation import Simulation

    try:
        catalog = load_catalog(task["chains"])
        applied = None
        if task.get("scenario") is not None:
            from ..scenarios.load import load_scenario

            applied = load_scenario(task["scenario"], catalog)
    except LoadError as error:
        print(command_text(error), file=sys.stderr)
        return EXIT_INVALID
    sink = KeyedSink(sys.stdout.buffer)
    sink.ready()  # tells the parent this worker has loaded the files
    if options.realtime:
        line = sys.stdin.readline().split()
        if len(line) != 2:
            return EXIT_OK  # the parent went away before the run began
        options = attrs.evolve(options, wall_origin=float(line[0]), start_ms=int(line[1]))
    fd = task["claims_fd"]
    owns = claimed(FileClaims(fd)) if fd is not None else shard(*task["shard"])
    if applied is not None:
        from ..scenarios.run import simulation as scenario_simulation

        simulation = scenario_simulation(applied, options, sink, owns=owns)
    else:
        simulation = Simulation(catalog, options, sink, owns=owns)
    sink.scheduler = simulation.scheduler
    settle_memory()
    failure: ChainsimError | None = None
    try:
        with stopping_on_signals(simulation.stop):
            simulation.run()
    except TemplateRunError as error:
        failure = error
        sink.stop_here()  # tells the parent where the run stops, as one process would
    except BrokenPipeError:
        silence_stdout()
    finally:
        try:
            sink.close()
        except BrokenPipeError:
            silence_stdout()
    print(stats_line(simulation.stats), file=sys.stderr)
    if failure is not None:
        print(command_text(failure), file=sys.stderr)
        return EXIT_INVALID
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
