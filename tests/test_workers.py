"""Past one core: --shard splits a run, --workers shares it between processes and merges their output."""

from __future__ import annotations

import os
from typing import Any

import pytest

from engine.sinks import SinkBase

from .conftest import CHAINS, START
from .test_cli import cli

BASE = ["--chains", str(CHAINS), "--seed", "11", "--start", START, "-q"]
RUN = [*BASE, "--count", "400"]


ARRIVALS = {  # a shard draws the arrivals of the others without waking for them: every way a run can end
    "count": ["--count", "400"],
    "duration": ["--duration", "20s"],  # the run ends at a time, between two arrivals
    "burst and interval": ["--count", "400", "--initial", "9", "--interval", "7ms"],
}


@pytest.mark.parametrize("arrivals", ARRIVALS.values(), ids=ARRIVALS.keys())
def test_shards_together_produce_exactly_the_events_of_one_run(arrivals):
    """Shards 0/3, 1/3 and 2/3 write disjoint sets of events whose union is the single run's events."""
    run = BASE + arrivals
    whole = cli(*run).stdout.splitlines()
    shards = [cli(*run, "--shard", f"{i}/3").stdout.splitlines() for i in range(3)]
    assert all(shards)
    assert sorted(whole) == sorted(line for shard in shards for line in shard)
    assert len(whole) == len(set(whole))


def test_each_shard_is_in_timestamp_order_and_merging_by_timestamp_restores_the_run():
    """Each shard is ordered; a merge by timestamp gives the single run's timestamps in order."""
    import heapq
    import json

    stamp = lambda line: json.loads(line)["timestamp"]  # noqa: E731
    whole = cli(*RUN).stdout.splitlines()
    shards = [cli(*RUN, "--shard", f"{i}/2").stdout.splitlines() for i in range(2)]
    for shard in shards:
        assert [stamp(x) for x in shard] == sorted(stamp(x) for x in shard)
    merged = list(heapq.merge(*shards, key=stamp))
    assert [stamp(x) for x in whole] == [stamp(x) for x in merged]


@pytest.mark.parametrize("arrivals", ARRIVALS.values(), ids=ARRIVALS.keys())
def test_workers_give_byte_identical_output_to_one_process(arrivals):
    """--workers 2 and --workers 3 write the same bytes as a single process, and the same summary counts,
    however the run ends (the workers claim blocks of instances as they go)."""
    run = BASE + arrivals
    single = cli(*run)
    for workers in ("2", "3"):
        parallel = cli(*run, "--workers", workers)
        assert 0 == parallel.returncode
        assert single.stdout == parallel.stdout
        count = lambda r: r.stderr.decode().split(" in ")[0]  # noqa: E731
        assert count(single) == count(parallel)


def test_workers_on_the_wall_clock_give_the_same_bytes_as_one_process():
    """--realtime --workers 2 paces the shards together and merges them into the one-process output."""
    paced = ["--chains", str(CHAINS), "--count", "150", "--rate", "100", "--seed", "5", "--start", START,
             "--realtime", "--speed", "4", "-q"]
    single, parallel = cli(*paced), cli(*paced, "--workers", "2")
    assert (0, 0) == (single.returncode, parallel.returncode)
    assert single.stdout == parallel.stdout != b""


def test_workers_in_development_mode_stop_cleanly_on_a_signal():
    """The default wall-clock mode with --workers stops on SIGTERM with whole lines and exit 0."""
    import json
    import signal
    import subprocess
    import sys

    process = subprocess.Popen([sys.executable, "-m", "engine", "--chains", str(CHAINS), "--workers", "2"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
    assert process.stdout is not None
    first = process.stdout.readline()
    process.send_signal(signal.SIGTERM)
    rest, stderr = process.communicate(timeout=30)
    assert 0 == process.returncode
    lines = (first + rest).splitlines()
    assert all(json.loads(line)["event_id"] for line in lines)
    stamps = [json.loads(line)["timestamp"] for line in lines]
    assert stamps == sorted(stamps)
    assert "20 chains" in stderr.decode().splitlines()[0]


def test_a_bad_shard_is_refused():
    """--shard takes I/N with 0 <= I < N."""
    result = cli(*RUN, "--shard", "3/3")
    assert 2 == result.returncode
    assert "argument --shard: '3/3': I must be at least 0 and below N" in result.stderr.decode()


def test_invalid_chains_are_reported_once_with_workers(chain_dir):
    """With --workers, invalid files give the same report as one process, once, and exit 2."""
    folder = chain_dir({"bad.yaml": "name: bad\nsteps: [{id: a, event_type: t, dely: 5}]\n"})
    args = ["--chains", str(folder), "--count", "10", "--seed", "1", "--start", START]
    single, parallel = cli(*args, cwd=folder.parent), cli(*args, "--workers", "2", cwd=folder.parent)
    assert (2, 2) == (single.returncode, parallel.returncode)
    assert single.stderr == parallel.stderr
    assert 1 == parallel.stderr.decode().count("unknown key 'dely'")


def test_a_worker_failing_at_run_time_stops_the_run_where_one_process_would(chain_dir):
    """A template error in one worker ends the merged output at the same event as one process, exit 2."""
    folder = chain_dir({"div.yaml": """
        name: div
        steps:
          - {id: one, event_type: t, payload: {ratio: "{{ 10 // (chain.instance - 40) }}"}}
          - {id: two, event_type: u, delay: 300}
    """})
    args = ["--chains", str(folder), "--count", "100", "--rate", "20", "--seed", "1", "--start", START, "-q"]
    single, parallel = cli(*args, cwd=folder.parent), cli(*args, "--workers", "2", cwd=folder.parent)
    assert (2, 2) == (single.returncode, parallel.returncode)
    assert single.stdout == parallel.stdout != b""
    assert "ZeroDivisionError" in parallel.stderr.decode()


def test_workers_with_a_closed_pipe_end_quietly():
    """`chainsim --workers 2 ... | head -1` stops the workers without hanging or a traceback."""
    import subprocess
    import sys

    command = f"{sys.executable} -m engine --chains {CHAINS} --count 200000 --seed 1 --workers 2 | head -1"
    result = subprocess.run(command, shell=True, capture_output=True, timeout=60)
    assert 1 == len(result.stdout.splitlines())
    assert b"Traceback" not in result.stderr


def test_invalid_chains_with_workers_leave_the_output_file_alone(chain_dir, tmp_path):
    """Validation comes before any output is opened: an existing --output file is not truncated."""
    folder = chain_dir({"bad.yaml": "name: bad\nsteps: [{id: a, event_type: t, dely: 5}]\n"})
    target = tmp_path / "keep.jsonl"
    target.write_text("precious\n")
    result = cli("--chains", str(folder), "--count", "10", "--workers", "2", "-o", str(target))
    assert 2 == result.returncode
    assert "precious\n" == target.read_text()


def _keyed(time_ms: int, rank: int, text: str = "") -> bytes:
    from engine.parallel.keyed import key

    return key(time_ms, rank) + text.encode() + b"\n"


def _workers_writing(*outputs: list[bytes], cut: int = 0):
    """Real processes that write the given keyed lines, in several writes, as workers would: two lines
    per write, or (`cut`) writes of `cut` bytes that split lines anywhere."""
    import subprocess
    import sys

    from engine.parallel.merge import Merge

    script = ("import sys, time\nfor part in {parts!r}:\n"
              "    sys.stdout.buffer.write(part); sys.stdout.flush(); time.sleep(0.01)")
    processes = []
    for lines in outputs:
        parts = [b"".join(lines[i:i + 2]) for i in range(0, len(lines), 2)]
        if cut:
            data = b"".join(lines)
            parts = [data[i:i + cut] for i in range(0, len(data), cut)]
        processes.append(subprocess.Popen([sys.executable, "-c", script.format(parts=parts)],
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    return Merge([p.stdout for p in processes])


class _Lines(SinkBase):
    needs_event = False

    def __init__(self) -> None:
        self.data = b""

    def write(self, event, line):
        self.data += line

    def write_lines(self, lines):
        self.data += lines


def _merged(one: list[bytes], two: list[bytes], paced: bool, sink: Any = None, cut: int = 0) -> bytes:
    merge = _workers_writing(one, two, cut=cut)
    assert merge.ready()
    sink = sink or _Lines()
    merge.into(sink, paced=paced)
    return sink.data


def test_the_merge_orders_by_key_and_lets_watermarks_only_move_the_frontier():
    """Watermarks (rank 0) are dropped, even one written behind an event of a higher key; equal keys of
    one worker keep their order; the merged lines are in (time, rank) order."""
    one = [_keyed(0, 0), _keyed(5, 2, '{"a":1}'), _keyed(5, 2, '{"a":0}'), _keyed(5, 0), _keyed(9, 4, '{"a":3}')]
    two = [_keyed(0, 0), _keyed(5, 3, '{"b":1}'), _keyed(6, 1, '{"b":2}'), _keyed(8, 0), _keyed(12, 5, '{"b":4}')]
    assert b'{"a":1}\n{"a":0}\n{"b":1}\n{"b":2}\n{"a":3}\n{"b":4}\n' == _merged(one, two, paced=True)


def test_the_merge_ends_at_the_lowest_stop_mark():
    """A stop mark (a worker failed at that key) ends the merge: lower keys of every worker pass, none after."""
    one = [_keyed(0, 0), _keyed(5, 2, '{"a":1}'), _keyed(7, 4, "!")]
    two = [_keyed(0, 0), _keyed(6, 3, '{"b":1}'), _keyed(7, 5, '{"b":2}'), _keyed(9, 1, '{"b":3}')]
    assert b'{"a":1}\n{"b":1}\n' == _merged(one, two, paced=False)


def test_a_stop_mark_split_between_two_reads_still_ends_the_merge():
    """Reads end anywhere in a line: a stop mark cut just before its newline is still seen, and a "!"
    inside an event is not a stop mark."""
    one = [_keyed(0, 0), _keyed(5, 2, '{"a":"hi!!"}'), _keyed(7, 4, "!")]
    two = [_keyed(0, 0), _keyed(6, 3, '{"b":1}'), _keyed(7, 5, '{"b":2}'), _keyed(9, 1, '{"b":3}')]
    assert len(b"".join(one)) % 30 == 1  # the last write of worker one is its final newline alone
    assert b'{"a":"hi!!"}\n{"b":1}\n' == _merged(one, two, paced=False, cut=30)


def test_a_worker_that_ends_before_its_first_line_is_not_ready():
    """A worker that could not load the files writes nothing: ready() says so instead of waiting."""
    workers = _workers_writing([], [_keyed(0, 0)])
    assert not workers.ready()


class _EventsLines(SinkBase):
    """A sink that takes lines one at a time (SinkBase's write_lines) and says it needs the events, or not."""

    def __init__(self, needs_event: bool) -> None:
        self.needs_event, self.data, self.events = needs_event, b"", []

    def write(self, event, line):
        self.data += line
        self.events.append(event)


@pytest.mark.parametrize("needs_event", [True, False])
def test_the_merge_decodes_events_only_for_sinks_that_need_them(needs_event):
    """One line at a time to a sink of SinkBase's write_lines: decoded events when it needs them, else {}."""
    one = [_keyed(0, 0), _keyed(5, 2, '{"a":1}')]
    two = [_keyed(0, 0), _keyed(6, 3, '{"b":2}')]
    sink = _EventsLines(needs_event)
    assert b'{"a":1}\n{"b":2}\n' == _merged(one, two, paced=False, sink=sink)
    assert ([{"a": 1}, {"b": 2}] if needs_event else [{}, {}]) == sink.events


def test_claims_hand_each_block_to_the_first_worker_that_asks():
    """Blocks are asked for in order: the first to ask takes a block, a later asker is told it is taken."""
    from engine.parallel.claims import FileClaims, claims_file

    fd = claims_file()
    assert fd is not None
    one, two = FileClaims(fd), FileClaims(fd)
    try:
        assert one.take(0) and not two.take(0)
        assert two.take(1) and not one.take(1)
        assert one.take(2) and one.take(3)
        assert not two.take(2) and not two.take(3) and two.take(4)
    finally:
        os.close(fd)


def test_racing_workers_take_every_block_exactly_once():
    """Processes that claim blocks as fast as they can, under the lock: no block lost or taken twice.
    (Without the lock this fails every time; with it, one racer may well take every block: the lock is not
    fair, which does not matter to workers that run a block for milliseconds between two claims.)"""
    import subprocess
    import sys
    import time

    from engine.parallel.claims import claims_file

    fd = claims_file()
    assert fd is not None
    blocks = 20_000
    script = ("import sys\nfrom engine.parallel.claims import FileClaims\nclaims = FileClaims(int(sys.argv[1]))\n"
              "sys.stdin.readline()  # all start together\n"
              f"print(' '.join(str(b) for b in range({blocks}) if claims.take(b)))")
    racers = [subprocess.Popen([sys.executable, "-c", script, str(fd)], pass_fds=(fd,), stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE) for _ in range(3)]
    time.sleep(0.5)  # every racer has started and waits
    for racer in racers:
        racer.stdin.write(b"go\n")  # type: ignore[union-attr]
        racer.stdin.flush()  # type: ignore[union-attr]
    taken = [[int(b) for b in racer.communicate()[0].split()] for racer in racers]
    os.close(fd)
    assert sorted(b for mine in taken for b in mine) == list(range(blocks))


def test_without_posix_locks_workers_fall_back_to_fixed_shards(monkeypatch):
    """Where fcntl is missing (Windows) there is no claims file, and each worker gets a fixed shard."""
    import json

    import engine.parallel.claims as claims
    from engine.parallel.workers import job
    from engine.run.options import RunOptions

    options = RunOptions(seed=1, start_ms=0, count=10)
    monkeypatch.setattr(claims, "fcntl", None)
    assert claims.claims_file() is None
    fixed = json.loads(job("chains", options, 1, 2, None))
    assert (None, [1, 2]) == (fixed["claims_fd"], fixed["shard"])
    assert options == RunOptions.from_json(json.dumps(fixed["options"]))  # the options come whole


def test_the_sqlite_sink_with_workers_is_a_usage_error(tmp_path):
    """The store records chain ends, which the workers' merge does not carry: refused, not silently in flight."""
    result = cli("--chains", str(CHAINS), "--count", "10", "--workers", "2", "--sink", f"sqlite:{tmp_path / 'x.db'}")
    assert result.returncode == 2 and "sqlite sink runs in one process" in result.stderr.decode()
    assert not (tmp_path / "x.db").exists()
