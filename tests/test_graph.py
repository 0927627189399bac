"""`graph`: chains as state diagrams, Mermaid and Graphviz dot, checked by Mermaid's parser and by dot itself.

Graphviz and the pinned Mermaid parser (tests/mermaid/, on Node.js) are installed by .ci/run:
`apt-get install -y graphviz` and `npm ci --prefix tests/mermaid`. Without them these tests fail and say so.
"""

# ruff: noqa: E501  (the expected diagrams are spelled out in full, one line of output per line)

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pytest

from engine import load_catalog
from engine.load.delays import Delay
from engine.load.graph import catalog_diagrams, diagram, dot, mermaid, render
from engine.load.overrides import Overrides

from .conftest import CHAINS, ROOT

MERMAID_CHECK = ROOT / "tests" / "mermaid"
CATALOG = load_catalog(CHAINS)

BUILD = """
    name: build
    steps:
      - id: submitted
        event_type: ci.build.submitted.v1
      - id: started
        delay: 150ms
        event_type: ci.build.started.v1
      - id: attempt
        delay: [500, 1500]
        branches:
          - id: succeeded
            weight: 3
            event_type: ci.build.succeeded.v1
            outcome: succeeded
            end: true
          - id: failed
            weight: 1
            event_type: ci.build.failed.v1
            steps:
              - id: retried
                delay: {distribution: exponential, mean: 1s, max: 5s}
                max_visits: 2
                goto: started
                event_type: ci.build.retried.v1
      - id: gave_up
        event_type: ci.build.gave_up.v1
        outcome: gave_up
"""

BUILD_MERMAID = """\
---
title: build
---
stateDiagram-v2
    state "submitted" as s0
    s0 : ci.build.submitted.v1
    state "started" as s1
    s1 : ci.build.started.v1
    s1 : after 150ms
    state "attempt" as s2
    s2 : one of
    s2 : after 500ms-1500ms
    state "succeeded" as s3
    s3 : ci.build.succeeded.v1
    s3 : outcome: succeeded
    state "failed" as s4
    s4 : ci.build.failed.v1
    state "retried" as s5
    s5 : ci.build.retried.v1
    s5 : after exponential 0ms-5s
    s5 : at most 2x
    state "gave_up" as s6
    s6 : ci.build.gave_up.v1
    s6 : outcome: gave_up
    [*] --> s0
    s0 --> s1
    s1 --> s2
    s2 --> s3 : 75%
    s2 --> s4 : 25%
    s3 --> [*]
    s4 --> s5
    s5 --> s1 : goto
    s5 --> s6 : skipped after 2x
    s6 --> [*]
    classDef choice stroke-dasharray:4
    class s2 choice
"""

BUILD_DOT = """\
digraph "build" {
    graph [fontname=Helvetica];
    node [shape=box, style=rounded, fontname=Helvetica];
    edge [fontname=Helvetica, fontsize=10];
    label="build"; labelloc=t;
    start [shape=point, width=0.15];
    end [shape=doublecircle, label="", width=0.12];
    s0 [label="submitted\\nci.build.submitted.v1"];
    s1 [label="started\\nci.build.started.v1\\nafter 150ms"];
    s2 [label="attempt\\none of\\nafter 500ms-1500ms", shape=diamond, style=dashed];
    s3 [label="succeeded\\nci.build.succeeded.v1\\noutcome: succeeded"];
    s4 [label="failed\\nci.build.failed.v1"];
    s5 [label="retried\\nci.build.retried.v1\\nafter exponential 0ms-5s\\nat most 2x"];
    s6 [label="gave_up\\nci.build.gave_up.v1\\noutcome: gave_up"];
    start -> s0;
    s0 -> s1;
    s1 -> s2;
    s2 -> s3 [label="75%"];
    s2 -> s4 [label="25%"];
    s3 -> end;
    s4 -> s5;
    s5 -> s1 [label="goto"];
    s5 -> s6 [label="skipped after 2x", style=dashed];
    s6 -> end;
}
"""

# An event type and an outcome may hold any printable character: none may break either format.
ODD = """
    name: odd
    steps:
      - id: a
        event_type: 'x.a";{b}[*]%%-->#1 <i>é\\.v1'
        outcome: "done: yes; \\"really\\""
"""


def _program(catalog_of, text: str):
    (program,) = catalog_of({"c.yaml": text}).programs.values()
    return program


def test_a_chain_as_mermaid_shows_steps_weights_delays_goto_used_up_steps_and_ends(catalog_of):
    """The Mermaid text of a small chain, exactly: each step, its event type and delay as written, branches in
    percent, the goto back with its bound, where a used-up step leads, and the ends."""
    assert BUILD_MERMAID == mermaid([diagram(_program(catalog_of, BUILD))])


def test_a_chain_as_dot_shows_the_same_as_graphviz(catalog_of):
    """The Graphviz text of the same chain, exactly: branching steps are dashed diamonds, used-up flows dashed."""
    assert BUILD_DOT == dot([diagram(_program(catalog_of, BUILD))])


def test_overrides_change_the_weights_and_delays_drawn(catalog_of):
    """A scenario's weights and delays (by id) are what the diagram shows."""
    changed = Overrides(weights={"failed": 3}, delays={"attempt": Delay.from_spec("2s")})
    text = mermaid([diagram(_program(catalog_of, BUILD), changed)])
    assert ["s2 : one of", "s2 : after 2s", "s2 --> s3 : 50%", "s2 --> s4 : 50%"] == [
        line.strip() for line in text.splitlines() if line.strip().startswith("s2 ")]


def test_weights_read_as_percent_to_three_digits(catalog_of):
    """Weights are normalised among siblings: 1, 1, 1 is a third each."""
    chain = """
        name: thirds
        steps:
          - id: pick
            branches:
              - {id: a, weight: 1, event_type: x.a.v1}
              - {id: b, weight: 1, event_type: x.b.v1}
              - {id: c, weight: 1, event_type: x.c.v1}
    """
    labels = [arrow.label for arrow in diagram(_program(catalog_of, chain)).arrows if arrow.kind == "branch"]
    assert ["33.3%", "33.3%", "33.3%"] == labels


def test_several_chains_are_composite_states_and_clusters_with_their_own_ids():
    """Every chain of the catalog in one diagram: each a composite state (Mermaid) or a cluster (dot)."""
    diagrams = catalog_diagrams(CATALOG)
    text = mermaid(diagrams)
    assert [f'state "{chain.name}" as c{i} {{' for i, chain in enumerate(CATALOG.chains)] == [
        line.strip() for line in text.splitlines() if line.strip().startswith("state") and line.endswith("{")]
    assert len(CATALOG.chains) == dot(diagrams).count("subgraph cluster_")
    _assert_well_formed(text)


@pytest.mark.parametrize("name", [chain.name for chain in CATALOG.chains])
def test_each_catalog_chains_mermaid_is_well_formed(name):
    """Every state an arrow names is declared once, braces balance, the header is Mermaid's."""
    _assert_well_formed(render(catalog_diagrams(CATALOG.select([name]))))


def test_mermaids_own_parser_accepts_every_diagram(catalog_of):
    """Mermaid's parser (pinned in tests/mermaid) reads every chain alone, all of them together, and odd text."""
    texts = [render(catalog_diagrams(CATALOG.select([chain.name]))) for chain in CATALOG.chains]
    texts += [render(catalog_diagrams(CATALOG)), mermaid([diagram(_program(catalog_of, ODD))]), BUILD_MERMAID]
    *found, broken = _mermaid_parse([*texts, "stateDiagram-v2\n  s0 -->> s1 ::\n"])  # and one it must refuse
    assert ([None] * len(texts), True) == (found, broken.startswith("Parse error on line 2"))


def test_text_that_looks_like_syntax_is_escaped(catalog_of):
    """Quotes, brackets, arrows and %% in an event type stay text: entity codes in Mermaid, escapes in dot."""
    chart = diagram(_program(catalog_of, ODD))
    assert "    s0 : x.a#34;#59;#123;b#125;#91;#42;#93;%%--#62;#35;1 #60;i#62;#233;#92;.v1" in mermaid([chart])
    assert 's0 [label="a\\nx.a\\";{b}[*]%%-->#1 <i>é\\\\.v1\\noutcome: done: yes; \\"really\\""];' in dot([chart])


def test_graphviz_draws_every_diagram(catalog_of):
    """`dot -Tsvg` accepts every chain alone, all together, and the odd text, without a warning."""
    texts = [render(catalog_diagrams(CATALOG.select([chain.name])), "dot") for chain in CATALOG.chains]
    texts += [render(catalog_diagrams(CATALOG), "dot"), dot([diagram(_program(catalog_of, ODD))]), BUILD_DOT]
    executable = shutil.which("dot")
    if executable is None:
        pytest.fail("Graphviz's dot is not installed: apt-get install -y graphviz (.ci/run installs it)")
    for text in texts:
        result = subprocess.run([executable, "-Tsvg"], input=text.encode(), capture_output=True, timeout=60)
        assert (0, b"") == (result.returncode, result.stderr), text
        assert result.stdout.startswith(b"<?xml")


def test_the_readmes_diagram_is_what_graph_prints():
    """README.md shows compliance_validation's diagram as `graph --chain compliance_validation` prints it."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    (shown,) = re.findall(r"```mermaid\n(.*?)```", readme, re.DOTALL)
    assert render(catalog_diagrams(CATALOG.select(["compliance_validation"]))) == shown


def test_the_graph_verb_prints_one_chain_or_several_in_either_format(chain_dir):
    """`graph --chain NAME` prints that chain's diagram; --only several; --format dot Graphviz's."""
    folder = chain_dir({"build.yaml": BUILD})
    one = _cli("graph", "--chains", str(folder), "--chain", "build")
    assert (0, BUILD_MERMAID, "") == (one.returncode, one.stdout, one.stderr)
    assert BUILD_DOT == _cli("graph", "--chains", str(folder), "--format", "dot").stdout
    several = _cli("graph", "--chains", str(CHAINS), "--only", "agent_*,vault_secret").stdout
    assert ['state "agent_execution" as c0 {', 'state "vault_secret" as c1 {'] == re.findall(r'state "\w+" as c\d \{', several)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--chain", "agnt_execution"],
         "chainsim: error: --chain 'agnt_execution' names no chain of {chains}\n  hint: did you mean 'agent_execution'?\n"),
        (["--chain", "nothing"],
         "chainsim: error: --chain 'nothing' names no chain of {chains}\n  hint: chains: agent_execution, code_generation, "),
        (["--format", "svg"],
         "chainsim: error: --format 'svg' is not a diagram format\n"
         "  hint: a diagram is mermaid (GitHub renders it) or dot (Graphviz: dot -Tsvg): --format dot\n"),
        (["--chain", "vault_secret", "--only", "agent_*"],
         "chainsim: error: give --chain (one chain) or --only (several), not both\n"),
    ],
)
def test_a_bad_chain_or_format_is_a_usage_error_with_a_hint(flags, message):
    """An unknown chain gets a did-you-mean or the list of chains, a bad format the formats: exit 2, no traceback."""
    result = _cli("graph", "--chains", str(CHAINS), *flags)
    assert (2, "") == (result.returncode, result.stdout)
    assert result.stderr.startswith(message.format(chains=CHAINS))


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=ROOT, capture_output=True, text=True, timeout=60)


def _mermaid_parse(texts: list[str]) -> list[str | None]:
    """Mermaid's own parser on each text: None when it parses, else its message."""
    if not (MERMAID_CHECK / "node_modules" / "mermaid").is_dir() or shutil.which("node") is None:
        pytest.fail("Mermaid's parser is not installed: npm ci --prefix tests/mermaid (needs Node.js; .ci/run does it)")
    result = subprocess.run(["node", str(MERMAID_CHECK / "check.mjs")], input=json.dumps(texts), capture_output=True,
                            text=True, timeout=120)
    assert 0 == result.returncode, result.stderr
    return json.loads(result.stdout)


def _assert_well_formed(text: str) -> None:
    """Structure Mermaid needs: its header; every state an arrow names declared exactly once; balanced braces."""
    lines = text.splitlines()
    header = lines.index("stateDiagram-v2")
    assert header in (0, 3) and (header == 0 or lines[:3] == ["---", lines[1], "---"])
    declared = re.findall(r'^\s*state "[^"]+" as (\w+)', text, re.MULTILINE)
    assert len(declared) == len(set(declared))
    named = {side for left, right in re.findall(r"^\s*(\S+) --> (\S+)", text, re.MULTILINE) for side in (left, right)}
    assert set() == named - set(declared) - {"[*]"}
    assert text.count("{") == text.count("}")
