"""The command line end to end, in a subprocess, as a user runs it."""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import CHAINS, FAILS_AT_INSTANCE_3, ROOT, START

ENGINE = [sys.executable, "-m", "engine"]
FIXED = ["--chains", str(CHAINS), "--seed", "3", "--start", START]


def cli(*args: str, cwd: Path = ROOT, timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*ENGINE, *args], cwd=cwd, capture_output=True, timeout=timeout)


def test_a_count_run_writes_json_lines_on_stdout_and_the_summary_on_stderr():
    """--count N runs N chains in virtual time; stdout holds only events, stderr the summary."""
    result = cli(*FIXED, "--count", "50")
    assert 0 == result.returncode
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert 50 == sum(1 for e in events if e["causation_id"] is None)
    stderr = result.stderr.decode()
    first = stderr.splitlines()[0]
    assert first.startswith(f"chainsim: {len(events)} events from 50 chains (50 finished, 0 in flight) in ")
    assert first.endswith("; seed 3, start 2026-01-01T00:00:00.000Z, virtual clock")
    assert "events by type:" in stderr and "chains by outcome:" in stderr
    assert "agent_execution: completed" in stderr


def test_the_same_flags_give_byte_identical_output():
    """Same files, --seed and --start: the same bytes, run after run."""
    assert cli(*FIXED, "--count", "200").stdout == cli(*FIXED, "--count", "200").stdout


def test_output_writes_a_file_and_leaves_stdout_empty(tmp_path):
    """--output FILE writes the JSON lines to FILE."""
    target = tmp_path / "events.jsonl"
    result = cli(*FIXED, "--count", "10", "--output", str(target))
    assert (0, b"") == (result.returncode, result.stdout)
    assert cli(*FIXED, "--count", "10").stdout == target.read_bytes()


def test_several_sinks_receive_the_same_events(tmp_path):
    """--sink can be given more than once; every sink gets every event."""
    one, two = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    result = cli(*FIXED, "--count", "10", "--sink", f"jsonl:{one}", "--sink", f"jsonl:{two}")
    assert 0 == result.returncode
    assert one.read_bytes() == two.read_bytes() != b""


def test_a_default_seed_is_random_and_printed_so_a_run_can_be_repeated():
    """Without --seed the run picks one and prints it; passing it back reproduces the run."""
    first = cli("--chains", str(CHAINS), "--count", "20", "--start", START, "-q")
    seed = first.stderr.decode().split("seed ")[1].split(",")[0]
    again = cli("--chains", str(CHAINS), "--count", "20", "--start", START, "--seed", seed, "-q")
    assert first.stdout == again.stdout


def test_realtime_paces_a_finite_run_on_the_wall_clock():
    """--realtime waits until each event is due; --speed makes simulated time run faster."""
    began = time.monotonic()
    result = cli(*FIXED, "--count", "10", "--rate", "10", "--realtime", "--speed", "4", "-q")
    elapsed = time.monotonic() - began
    events = [json.loads(line) for line in result.stdout.splitlines()]
    span_ms = int(events[-1]["timestamp"][17:19]) * 1000 + int(events[-1]["timestamp"][20:23])
    assert 0 == result.returncode
    assert "wall clock x4" in result.stderr.decode()
    assert span_ms / 4 / 1000 <= elapsed < span_ms / 4 / 1000 + 10


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_development_mode_stops_cleanly_on_a_signal(sig):
    """The default mode runs until Ctrl-C or SIGTERM, then stops with whole lines, a summary and exit 0."""
    process = subprocess.Popen([*ENGINE, "--chains", str(CHAINS)], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, bufsize=0)  # unbuffered: communicate() reads the rest
    assert process.stdout is not None
    first = process.stdout.readline()  # the 20 initial chains start at once
    assert json.loads(first)["causation_id"] is None
    process.send_signal(sig)
    rest, stderr = process.communicate(timeout=30)
    assert 0 == process.returncode
    lines = (first + rest).splitlines()
    assert all(json.loads(line)["event_id"] for line in lines)
    assert (first + rest).endswith(b"\n")
    summary = stderr.decode().splitlines()[0]
    assert summary.startswith("chainsim: ") and "20 chains" in summary and "wall clock x1" in summary
    assert "Traceback" not in stderr.decode()


def test_ctrl_c_while_the_chains_load_ends_without_a_traceback(chain_dir):
    """Ctrl-C before the run begins (here: while 300 chain files load): exit 130, one line, no traceback,
    nothing written."""
    source = (CHAINS / "agent_execution.yaml").read_text()
    folder = chain_dir({f"c{number}.yaml": source.replace("name: agent_execution", f"name: c{number}")
                        for number in range(300)})
    process = subprocess.Popen([*ENGINE, "--chains", str(folder), "--count", "5"], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    if process.returncode == 0:
        pytest.skip("the files were loaded before the signal")  # a machine much faster than this one
    assert (130, b"", b"chainsim: interrupted\n") == (process.returncode, stdout, stderr)


def test_a_closed_pipe_ends_the_run_quietly():
    """`chainsim ... | head -1` stops the engine without a traceback."""
    command = f"{sys.executable} -m engine --chains {CHAINS} --count 100000 --seed 1 | head -1"
    result = subprocess.run(command, shell=True, cwd=ROOT, capture_output=True, timeout=60)
    assert 1 == len(result.stdout.splitlines())
    assert b"Traceback" not in result.stderr


def test_help_documents_every_flag():
    """`run --help` lists every flag of a run."""
    text = cli("run", "--help").stdout.decode()
    for flag in ("--chains", "--count", "--seed", "--start", "--rate", "--interval", "--initial", "--realtime",
                 "--speed", "--duration", "--output", "--sink", "--quiet", "--debug"):
        assert flag in text


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--count", "-1"], "argument --count: '-1' is negative"),
        (["--rate", "0"], "argument --rate: '0' must be above 0"),
        (["--interval", "soon"], "argument --interval: 'soon' is not a duration (e.g. 500, 500ms, 1.5s, 2m, 1d)"),
        (["--count", "1", "--start", "yesterday"],
         "chainsim: error: --start 'yesterday' is not an ISO 8601 time, e.g. 2026-01-01T00:00:00Z"),
        (["--count", "1", "--rate", "1", "--interval", "1s"],
         "chainsim: error: give --rate (Poisson arrivals), --interval (fixed gap) or --shape, not more than one"),
        (["--duration", "1m", "--interval", "0"],
         "chainsim: error: --interval must be at least 1 µs (a million chains per second)"),
        (["--duration", "1m", "--rate", "1e300"],
         "chainsim: error: --rate must be at most 1,000,000 chain starts per second"),
        (["--count", "1", "--start", "0001-01-01T00:00:00Z"],
         "chainsim: error: --start '0001-01-01T00:00:00Z' is outside the years 1000 to 9999 (RFC 3339 timestamps)"),
        (["--count", "1", "--speed", "1"],
         "chainsim: error: --speed paces the wall clock: add --realtime (a --count run is in virtual time)"),
        (["--count", "1", "--output", "/dev/full"], "chainsim: error: cannot write events: No space left on device"),
        (["--count", "1", "--sink", "carrier-pigeon:x"],
         "chainsim: error: unknown sink 'carrier-pigeon' in 'carrier-pigeon:x'; known sinks: jsonl"),
    ],
)
def test_bad_flags_exit_2_with_a_clear_message(flags, message):
    """A flag the engine cannot use is an error on stderr with exit code 2, no traceback."""
    result = cli("--chains", str(CHAINS), *flags)
    assert 2 == result.returncode
    assert message in result.stderr.decode()
    assert b"Traceback" not in result.stderr


def test_a_template_that_fails_at_run_time_keeps_the_events_before_it(chain_dir):
    """A template error during a run names the file and line, keeps earlier events and exits 2."""
    folder = chain_dir({"div.yaml": FAILS_AT_INSTANCE_3})
    result = cli("--chains", str(folder), "--count", "10", "--rate", "1", "--seed", "1", "--start", START,
                 cwd=folder.parent)
    assert 2 == result.returncode
    assert 3 == len(result.stdout.splitlines())
    stderr = result.stderr.decode()
    assert ("chainsim: error: chains/div.yaml:6:14: $.steps[0].payload.ratio: template error at run time: "
            "ZeroDivisionError: integer division or modulo by zero") in stderr
    assert "hint: the events before this one were written; fix the template and run again" in stderr
    assert "Traceback" not in stderr


def test_validate_and_list_describe_the_catalog():
    """validate says the catalog is valid and what each chain's instance is expected to do; list shows each
    chain's share, the same figures, its steps and event types."""
    validate = cli("validate", "--chains", str(CHAINS))
    assert (0, b"") == (validate.returncode, validate.stdout)
    assert f"""\
{CHAINS}: 9 chains valid; scenarios: 6 scenarios valid
  agent_execution        4.0 events, 1.20 s mean, 1.65 s p95
  code_generation        2.0 events, 350 ms mean, 485 ms p95
  compliance_validation  3.2 events, 1.58 s mean, 5.78 s p95
  consul_service         2.0 events, 50 ms mean, 50 ms p95
  database_query         2.0 events, 35 ms mean, 58 ms p95
  intelligence_query     2.0 events, 200 ms mean, 290 ms p95
  metadata_stamping      2.0 events, 100 ms mean, 145 ms p95
  pattern_discovery      6.2 events, 3.46 s mean, 8.37 s p95
  vault_secret           2.0 events, 35 ms mean, 49 ms p95
""" == validate.stderr.decode()
    listing = cli("list", "--chains", str(CHAINS)).stdout.decode()
    assert "agent_execution  18.2%  4.0 events, 1.20 s mean, 1.65 s p95  (chains/agent_execution.yaml)" in listing
    assert "pattern_discovery  5.5%  6.2 events, 3.46 s mean, 8.37 s p95" in listing
    assert "execution_failed (10%)" in listing
    assert "omninode.vault.secret.read.completed.v1" in listing


def test_python_m_engine_and_the_console_script_agree():
    """The `chainsim` console script is the same program as `python -m engine`."""
    script = Path(sys.executable).with_name("chainsim")
    if not script.exists():
        pytest.skip("package not installed with its console script")
    result = subprocess.run([str(script), *FIXED, "--count", "5"], capture_output=True, cwd=ROOT,
                            env={**os.environ}, timeout=60)
    assert cli(*FIXED, "--count", "5").stdout == result.stdout


@pytest.mark.parametrize("workers", ["1", "2"])
def test_without_start_wall_clock_timestamps_are_the_time_events_leave(workers):
    """On the wall clock without --start, the run starts once the chains are loaded: the first event's
    timestamp is the moment it arrives (give or take the pipe), not the moment the command began."""
    import datetime as dt

    process = subprocess.Popen([*ENGINE, "--chains", str(CHAINS), "--workers", workers], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
    assert process.stdout is not None
    first = process.stdout.readline()
    arrived = time.time()
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=30)
    stamp = dt.datetime.fromisoformat(json.loads(first)["timestamp"].replace("Z", "+00:00")).timestamp()
    assert -0.01 <= arrived - stamp < 0.15  # loading the chains takes 0.3 s and more


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ("\"{{ ('nan' if chain.instance == 2 else '1.5') | float }}\"",
         "chains/c.yaml:6:10: $.steps[0].payload.x: template error at run time: a template produced "
         "the number nan, which JSON cannot hold (no NaN, no infinity)"),
        ("\"{{ 1e308 * (10 if chain.instance == 2 else 1) }}\"",
         "chains/c.yaml:6:10: $.steps[0].payload.x: template error at run time: a template produced "
         "the number inf, which JSON cannot hold (no NaN, no infinity)"),
        ("\"{{ 10 ** 30 if chain.instance == 2 else 1 }}\"",
         "chains/c.yaml:6:7: $.steps[0].payload: template error at run time: TypeError: the payload is not JSON: "
         "Integer exceeds 64-bit range"),
    ],
    ids=["nan", "infinity", "beyond 64 bits"],
)
def test_a_template_that_makes_a_number_json_cannot_hold_stops_the_run_at_its_place(chain_dir, payload, message):
    """NaN, infinity and integers beyond 64 bits are never written as null or garbage: the run stops at the
    event (exit 2), the two events before it kept."""
    folder = chain_dir({"c.yaml": f"""
        name: c
        steps:
          - id: a
            event_type: c.a.v1
            payload:
              x: {payload}
    """})
    result = cli("--chains", str(folder), "--count", "5", "--seed", "1", "--start", START, "-q", cwd=folder.parent)
    stderr = result.stderr.decode()
    assert (2, 2) == (result.returncode, len(result.stdout.splitlines()))
    assert message in stderr and "Traceback" not in stderr
    assert "chainsim: 2 events from 3 chains" in stderr


def test_a_run_that_reaches_year_9999_stops_there_and_says_so(chain_dir):
    """Events due after 9999-12-31T23:59:59.999Z are never written (RFC 3339 has four-digit years); the run
    ends there with a note and exit 0, and every timestamp written is RFC 3339."""
    folder = chain_dir({"c.yaml": """
        name: c
        steps:
          - id: a
            event_type: c.a.v1
          - id: b
            delay: 300d
            event_type: c.b.v1
    """})
    result = cli("--chains", str(folder), "--count", "3", "--seed", "1", "--start", "9999-06-01T00:00:00Z", "-q")
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert (0, ["c.a.v1"] * 3) == (result.returncode, [e["event_type"] for e in events])
    assert all(e["timestamp"].startswith("9999-06-01T") for e in events)
    assert ("chainsim: the run stopped at 9999-12-31T23:59:59.999Z, the last RFC 3339 time, with events still to come\n"
            "  hint: timestamps are RFC 3339 with four-digit years: a run ends at 9999-12-31T23:59:59.999Z; "
            "start earlier") in result.stderr.decode()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--count", "1", "--realtime", "--speed", "inf"], "argument --speed: 'inf' must be a finite number"),
        (["--count", "1", "--rate", "nan"], "argument --rate: 'nan' must be above 0"),
        (["--duration", "nan"], "argument --duration: 'nan' is not a duration"),
        (["--interval", "inf", "--count", "1"], "argument --interval: 'inf' is not a duration"),
    ],
)
def test_flags_that_are_not_finite_numbers_are_refused(flags, message):
    """NaN and infinity given on the command line are usage errors (exit 2), not strange runs."""
    result = cli("--chains", str(CHAINS), *flags)
    assert 2 == result.returncode
    assert message in result.stderr.decode()


def _on_a_terminal(*args: str, cwd: Path = ROOT) -> tuple[bytes, bytes]:
    """Run the command with stderr on a pseudo-terminal: (stdout, what the terminal showed)."""
    import pty

    leader, follower = pty.openpty()
    process = subprocess.Popen([*ENGINE, *args], cwd=cwd, stdout=subprocess.PIPE, stderr=follower)
    os.close(follower)
    shown = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed: the command has ended
            break
        if not chunk:
            break
        shown += chunk
    stdout = process.stdout.read() if process.stdout else b""
    process.wait(60)
    os.close(leader)
    return stdout, shown


def test_a_long_run_shows_progress_on_a_terminal_and_erases_it(tmp_path):
    """With stderr on a terminal, a run of a few seconds draws a progress line (events, rate, in flight,
    simulated time, share of --count) a few times a second, erased before the summary."""
    stdout, shown = _on_a_terminal(*FIXED, "--count", "40000", "-o", str(tmp_path / "out.jsonl"))
    text = shown.decode()
    assert "% of --count 40000" in text and " in flight" in text and "/s" in text and " at 2026-01-01T" in text
    assert "\r\x1b[Kchainsim: 9" in text.replace("\r\n", "\n") or "\r\x1b[K" in text
    summary_at = text.index("chainsim: ", text.rindex("\r\x1b[K") + 1)
    assert text[summary_at:].startswith("chainsim: ") and " events from 40000 chains" in text[summary_at:]


def test_no_progress_line_when_stderr_is_no_terminal_or_with_quiet(tmp_path):
    """Piped stderr never gets a progress line; --quiet keeps even a terminal to the one-line summary."""
    piped = cli(*FIXED, "--count", "40000", "-o", str(tmp_path / "a.jsonl"))
    assert b"\x1b[K" not in piped.stderr and b"% of --count" not in piped.stderr
    _, shown = _on_a_terminal(*FIXED, "--count", "40000", "-q", "-o", str(tmp_path / "b.jsonl"))
    assert b"% of --count" not in shown and 1 == len(shown.strip().splitlines())


def test_list_shows_each_delay_as_its_author_wrote_it(chain_dir):
    """5m stays 5m (not 300s), 1500 is 1500ms, a distribution shows its bounds as written."""
    folder = chain_dir({"c.yaml": """
        name: c
        steps:
          - id: a
            event_type: c.a.v1
          - id: b
            delay: 5m
            event_type: c.b.v1
          - id: c
            delay: [1500, "2.5s"]
            event_type: c.c.v1
          - id: d
            delay: {distribution: lognormal, median: 2s, sigma: 0.5, min: 500ms, max: 1h}
            event_type: c.d.v1
    """})
    listing = cli("list", "--chains", str(folder)).stdout.decode()
    assert ["after 5m", "after 1500ms-2.5s", "after lognormal 500ms-1h"] == [
        line[line.index("after"):] for line in listing.splitlines() if "after" in line]


def test_only_runs_a_subset_of_the_catalog_in_its_weights_proportions():
    """--only takes names and globs; only those chains run, drawn with their own weights (here 20 : 8)."""
    result = cli(*FIXED, "--count", "400", "--only", "agent_*,vault_secret", "-q")
    chains = collections.Counter(json.loads(line)["chain"] for line in result.stdout.splitlines()
                                 if json.loads(line)["causation_id"] is None)
    assert {"agent_execution", "vault_secret"} == set(chains)
    assert 0.6 < chains["agent_execution"] / 400 < 0.82  # 20 / 28 = 71%


def test_only_with_workers_gives_the_bytes_of_one_process():
    """The selection travels to the workers with the run's options: the same bytes."""
    flags = (*FIXED, "--count", "300", "--only", "agent_execution,intelligence_query", "-q")
    assert cli(*flags).stdout == cli(*flags, "--workers", "2").stdout


@pytest.mark.parametrize(
    ("pattern", "message"),
    [("agnt_execution", "chainsim: error: --only 'agnt_execution' names no chain of "),
     ("nothing*", "  hint: chains here: agent_execution, code_generation")],
)
def test_only_naming_no_chain_is_a_usage_error_with_a_hint(pattern, message):
    """A name that matches nothing gets a did-you-mean; a glob that matches nothing lists the chains."""
    result = cli(*FIXED, "--count", "3", "--only", pattern)
    assert 2 == result.returncode
    assert message in result.stderr.decode()
