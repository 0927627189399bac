"""`validate` on bad chain folders: every problem is one clear message, with its place and a hint.

Each folder under tests/data/invalid/ holds one mistake (or, for several_broken_files, many); each test
runs the command line on it in a subprocess and compares the whole of stderr.
"""

# ruff: noqa: E501  (the expected messages are spelled out in full, one line of output per line)

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.load import yaml_marks as _yaml
from engine.load.files import yaml_files as chain_files

from .conftest import CHAINS, ROOT

INVALID = Path(__file__).resolve().parent / "data" / "invalid"
HANG = 10.0  # seconds: far beyond a refusal (milliseconds), far below what an unbounded load takes
EXIT_INVALID = 2


def validate(chains: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine", "validate", "--chains", chains],
        cwd=cwd, capture_output=True, text=True, timeout=60,
    )


def assert_refused(case: str, expected: str) -> None:
    """validate on tests/data/invalid/<case>/ exits 2, prints nothing on stdout and exactly `expected` on stderr."""
    result = validate(".", INVALID / case)
    assert "Traceback" not in result.stderr
    assert (EXIT_INVALID, "", expected) == (result.returncode, result.stdout, result.stderr)


UNKNOWN_KEYS = [
    ("misspelt_key_in_delay", """\
chain.yaml:4:38: $.steps[0].delay.medain: unknown key 'medain'
  at chain 'demo' > step 'requested' > key 'delay.medain'
  hint: did you mean 'median'?
1 problem in 1 file
"""),
    ("unknown_key_top_level", """\
chain.yaml:2:1: $.descripton: unknown key 'descripton'
  at chain 'demo' > key 'descripton'
  hint: did you mean 'description'?
1 problem in 1 file
"""),
    ("unknown_key_in_step", """\
chain.yaml:5:5: $.steps[0].paylaod: unknown key 'paylaod'
  at chain 'demo' > step 'requested' > key 'paylaod'
  hint: did you mean 'payload'?
1 problem in 1 file
"""),
    ("unknown_key_in_branch", """\
chain.yaml:10:9: $.steps[1].branches[0].outcom: unknown key 'outcom'
  at chain 'demo' > step 'finished' > branch 'completed' > key 'outcom'
  hint: did you mean 'outcome'?
1 problem in 1 file
"""),
    ("unknown_key_in_distribution", """\
chain.yaml:10:7: $.steps[1].delay.maxx: unknown key 'maxx'
  at chain 'demo' > step 'completed' > key 'delay.maxx'
  hint: did you mean 'max'?
1 problem in 1 file
"""),
]

WRONG_TYPES = [
    ("weight_is_a_string", """\
chain.yaml:8:17: $.steps[1].branches[0].weight: expected a number, found the string '90'
  at chain 'demo' > step 'finished' > branch 'completed' > key 'weight'
  hint: a weight is a number, written without quotes, e.g. weight: 90
1 problem in 1 file
"""),
    ("steps_not_a_list", """\
chain.yaml:3:3: $.steps: expected a list, found a mapping
  at chain 'demo' > key 'steps'
  hint: steps is a list: each item starts with '- id: ...'
1 problem in 1 file
"""),
    ("top_level_list", """\
chain.yaml:1:1: $: expected a mapping, found a list
  hint: a chain file is a mapping with at least name and steps, e.g. name: my_chain, steps: [...]
1 problem in 1 file
"""),
]

MISSING_KEYS = [
    ("missing_name", """\
chain.yaml:1:1: $: missing required key 'name'
  hint: every chain file names its chain, e.g. name: agent_execution
1 problem in 1 file
"""),
    ("missing_steps", """\
chain.yaml:1:1: $: missing required key 'steps'
  at chain 'demo'
  hint: a chain needs a list of steps, e.g. steps: [{id: requested, event_type: x.requested.v1}]
1 problem in 1 file
"""),
    ("missing_step_id", """\
chain.yaml:3:5: $.steps[0]: missing required key 'id'
  at chain 'demo' > step #1
  hint: every step needs an id, e.g. id: query_requested
1 problem in 1 file
"""),
    ("missing_branch_weight", """\
chain.yaml:8:9: $.steps[0].branches[1]: missing required key 'weight'
  at chain 'demo' > step 'finished' > branch 'failed'
  hint: every branch needs a weight, e.g. weight: 90
1 problem in 1 file
"""),
    ("missing_max_of_normal_delay", """\
chain.yaml:7:7: $.steps[1].delay: missing required key 'max'
  at chain 'demo' > step 'completed' > key 'delay'
  hint: distributions and computed delays are bounded: add max, e.g. max: 5s
1 problem in 1 file
"""),
    ("delay_mapping_without_distribution", """\
chain.yaml:6:12: $.steps[1].delay: missing required key 'distribution'
  at chain 'demo' > step 'completed' > key 'delay'
  hint: a delay written as a mapping names its distribution: uniform, normal, lognormal or exponential
1 problem in 1 file
"""),
]

BAD_DELAYS = [
    ("bad_duration_string", """\
chain.yaml:6:12: $.steps[1].delay: the string '5 sec' is not a duration
  at chain 'demo' > step 'completed' > key 'delay'
  hint: a duration is a number of milliseconds (150) or a string with a unit: "150ms", "1.5s", "2m", "1h", "1d"
1 problem in 1 file
"""),
    ("range_min_above_max", """\
chain.yaml:6:12: $.steps[1].delay: max (5ms) is below min (50ms)
  at chain 'demo' > step 'completed' > key 'delay'
  hint: a delay range is [min, max] in milliseconds, e.g. delay: [500, 1500]
1 problem in 1 file
"""),
    ("distribution_min_above_max", """\
chain.yaml:9:12: $.steps[1].delay.max: max (500ms) is below min (2s)
  at chain 'demo' > step 'completed' > key 'delay.max'
  hint: min is the smallest delay and max the largest: swap them, or fix one
1 problem in 1 file
"""),
    ("mean_outside_range", """\
chain.yaml:9:13: $.steps[1].delay.mean: mean (50ms) is outside [min, max] (100ms, 1s)
  at chain 'demo' > step 'completed' > key 'delay.mean'
  hint: the mean lies within [min, max] (min defaults to 0): move the mean, or widen the range
1 problem in 1 file
"""),
    ("negative_delay", """\
chain.yaml:6:12: $.steps[1].delay: must be at least 0, found -5
  at chain 'demo' > step 'completed' > key 'delay'
  hint: durations and counts cannot be negative
1 problem in 1 file
"""),
]

BAD_WEIGHTS = [
    ("chain_weight_zero", """\
chain.yaml:2:9: $.weight: must be above 0, found 0
  at chain 'demo' > key 'weight'
  hint: weights are relative and above 0; to turn something off, remove it
1 problem in 1 file
"""),
    ("branch_weight_negative", """\
chain.yaml:9:17: $.steps[0].branches[1].weight: must be above 0, found -10
  at chain 'demo' > step 'finished' > branch 'failed' > key 'weight'
  hint: weights are relative and above 0; to turn something off, remove it
1 problem in 1 file
"""),
]

BAD_STEP_SHAPES = [
    ("one_branch", """\
chain.yaml:5:7: $.steps[0].branches: needs at least 2 items, found 1
  at chain 'demo' > step 'finished' > key 'branches'
  hint: a step with branches needs at least two; for one, write the step itself
1 problem in 1 file
"""),
    ("event_type_and_branches", """\
chain.yaml:6:7: $.steps[0].branches: a step has event_type or branches, not both
  at chain 'demo' > step 'finished' > key 'branches'
  hint: move this step's event into one of its branches, or remove branches
1 problem in 1 file
"""),
    ("neither_event_type_nor_branches", """\
chain.yaml:5:5: $.steps[1]: step has neither event_type nor branches
  at chain 'demo' > step 'completed'
  hint: add event_type: <type of the event>, or branches: [...] to choose among alternatives
1 problem in 1 file
"""),
]

UNRESOLVED_NAMES = [
    ("duplicate_chain_name", """\
b_second.yaml:2:7: $.name: duplicate chain name 'demo'
  at chain 'demo' > key 'name'
  hint: chain names are unique across files; a_first.yaml uses it too
1 problem in 1 file
"""),
    ("duplicate_step_id", """\
chain.yaml:5:9: $.steps[1].id: duplicate step id 'requested'
  at chain 'demo' > step 'requested' > key 'id'
  hint: step ids are unique within a chain; 'requested' is also the id at $.steps[0]
1 problem in 1 file
"""),
    ("goto_unknown_step", """\
chain.yaml:7:11: $.steps[1].goto: goto names unknown step 'requestd'
  at chain 'demo' > step 'retried' > key 'goto'
  hint: did you mean 'requested'?
1 problem in 1 file
"""),
    ("goto_back_without_max_visits", """\
chain.yaml:7:11: $.steps[1].goto: goto 'requested' jumps back: an unbounded loop
  at chain 'demo' > step 'retried' > key 'goto'
  hint: bound the loop with max_visits on this step, e.g. max_visits: 3
1 problem in 1 file
"""),
]

BAD_NAMES = [
    ("bad_chain_name", """\
chain.yaml:1:7: $.name: the string 'Demo-Chain' is not a valid chain name
  at chain 'Demo-Chain' > key 'name'
  hint: chain names are snake_case: lowercase letters, digits and _, starting with a letter
1 problem in 1 file
"""),
    ("bad_var_name", """\
chain.yaml:3:3: $.vars.user-name: the string 'user-name' is not a valid var name
  at chain 'demo' > key 'vars.user-name'
  hint: var names are letters, digits and _, not starting with a digit (templates read them as vars.<name>)
1 problem in 1 file
"""),
    ("bad_locale", """\
chain.yaml:2:9: $.locale: the string 'english' is not a valid locale
  at chain 'demo' > key 'locale'
  hint: a Faker locale looks like en_US or de_DE
1 problem in 1 file
"""),
    ("unknown_locale", """\
chain.yaml:2:9: $.locale: unknown Faker locale 'zz_ZZ'
  at chain 'demo' > key 'locale'
  hint: did you mean 'zu_ZA'?
1 problem in 1 file
"""),
]

TEMPLATE_SYNTAX = [
    ("template_syntax_error_one_line", """\
chain.yaml:6:13: $.steps[0].payload.user: template syntax error: unexpected '}'
  at chain 'demo' > step 'requested' > key 'payload.user'
  hint: check the {{ }} and {% %} pairs of this template
1 problem in 1 file
"""),
    ("template_syntax_error_block", """\
chain.yaml:9:9: $.steps[0].payload.report: template syntax error: Encountered unknown tag 'endfi'. Jinja was looking for the following tags: 'elif' or 'else' or 'endif'. The innermost block that needs to be closed is 'if'.
  at chain 'demo' > step 'requested' > key 'payload.report'
  hint: check the {{ }} and {% %} pairs of this template
1 problem in 1 file
"""),
    ("folded_template_syntax_error", """\
chain.yaml:6:13: $.steps[0].payload.note: template syntax error: unexpected '}', expected ')'
  at chain 'demo' > step 'requested' > key 'payload.note'
  hint: check the {{ }} and {% %} pairs of this template
1 problem in 1 file
"""),
]

DRY_RUN_FAILURES = [
    ("undefined_var", """\
chain.yaml:8:13: $.steps[0].payload.user: template error: vars.nope is undefined
  at chain 'demo' > step 'requested' > key 'payload.user'
  hint: vars of this chain: user
1 problem in 1 file
"""),
    ("undefined_name", """\
chain.yaml:6:13: $.steps[0].payload.user: template error: 'nope' is undefined
  at chain 'demo' > step 'requested' > key 'payload.user'
  hint: names in scope: vars, data, faker, random, steps, chain, event, elapsed_ms, delay_ms, visit
1 problem in 1 file
"""),
    ("step_not_yet_emitted", """\
chain.yaml:6:10: $.steps[0].payload.x: template error: steps.later is not emitted yet
  at chain 'demo' > step 'requested' > key 'payload.x'
  hint: steps.<id> holds events already emitted by this instance (here: none yet)
1 problem in 1 file
"""),
    ("unknown_step_in_template", """\
chain.yaml:8:10: $.steps[1].payload.x: template error: no step 'requsted' in this chain
  at chain 'demo' > step 'completed' > key 'payload.x'
  hint: did you mean 'requested'?
1 problem in 1 file
"""),
    ("var_used_before_it_is_set", """\
chain.yaml:3:13: $.vars.greeting: template error: vars.user is used before it is set
  at chain 'demo' > key 'vars.greeting'
  hint: a var sees only the vars above it; move 'user' up, above its first use
1 problem in 1 file
"""),
    ("undefined_data_list", """\
chain.yaml:6:13: $.steps[0].payload.user: template error: data.user is undefined
  at chain 'demo' > step 'requested' > key 'payload.user'
  hint: did you mean 'users'?
1 problem in 1 file
"""),
    ("unknown_faker_generator", """\
chain.yaml:6:13: $.steps[0].payload.user: template error: faker has no generator 'nme'; did you mean 'name'?
  at chain 'demo' > step 'requested' > key 'payload.user'
  hint: see https://faker.readthedocs.io/en/stable/providers.html for generator names
1 problem in 1 file
"""),
]

REFUSED_FILES = [
    ("invalid_yaml_syntax", """\
chain.yaml:5:4: $: invalid YAML: expected <block end>, but found '<block mapping start>' (while parsing a block collection at line 3)
  hint: check the indentation: the keys of a mapping, and the '-' of a list, line up
1 problem in 1 file
"""),
    ("yaml_tab_indent", """\
chain.yaml:4:1: $: invalid YAML: found character '\\t' that cannot start any token (while scanning for the next token)
  hint: YAML indents with spaces, not tabs
1 problem in 1 file
"""),
    ("unclosed_quote", """\
chain.yaml:5:1: $: invalid YAML: found unexpected end of stream (while scanning a quoted scalar at line 4)
  hint: a quoted string is not closed: add the closing quote
1 problem in 1 file
"""),
    ("duplicate_mapping_key", """\
chain.yaml:5:5: $.steps[0].event_type: duplicate key 'event_type'
  at chain 'demo' > step 'requested' > key 'event_type'
  hint: 'event_type' is already set at line 4; keep one
1 problem in 1 file
"""),
    ("python_tag", """\
chain.yaml:5:14: $.steps[0].payload: tag !!python/object/apply:os.system is not allowed
  at chain 'demo' > step 'requested' > key 'payload'
  hint: chain files are plain YAML: no custom tags
1 problem in 1 file
"""),
    ("alias_bomb", """\
chain.yaml:7:12: $: aliases expand the document to more than 200000 values
  hint: aliases that repeat aliases multiply; write the data out or make it smaller
1 problem in 1 file
"""),
    ("deep_nesting", """\
chain.yaml:2:72: $: nesting deeper than 64 levels
  hint: chain files are shallow; flatten the structure
1 problem in 1 file
"""),
    ("not_utf8", """\
chain.yaml:2:17: $: not UTF-8 text: byte 0xe9 cannot be decoded
  hint: save the file as UTF-8
1 problem in 1 file
"""),
    ("empty_file", """\
chain.yaml:1:1: $: the file is empty
  hint: a chain file is a mapping with at least name and steps, e.g. name: my_chain, steps: [...]
1 problem in 1 file
"""),
    ("bad_data_file", """\
data/users.yaml:4:1: $: invalid YAML: expected ',' or ']', but got '<stream end>' (while parsing a flow sequence at line 2)
  hint: a [ is not closed: add the ], or quote a value that starts with [
1 problem in 1 file
"""),
]


@pytest.mark.parametrize(("case", "expected"), UNKNOWN_KEYS)
def test_an_unknown_key_is_named_with_the_closest_known_key(case: str, expected: str) -> None:
    """A misspelt key, at the top, in a step, a branch or a distribution, gets a did-you-mean."""
    assert_refused(case, expected)


@pytest.mark.parametrize(("case", "expected"), WRONG_TYPES)
def test_a_value_of_the_wrong_type_says_what_was_expected_and_found(case: str, expected: str) -> None:
    """A value of the wrong kind names the kind wanted and the value found."""
    assert_refused(case, expected)


@pytest.mark.parametrize(("case", "expected"), MISSING_KEYS)
def test_a_missing_required_key_is_named_where_it_belongs(case: str, expected: str) -> None:
    """A missing key is reported at the mapping that lacks it, with an example to copy."""
    assert_refused(case, expected)


@pytest.mark.parametrize(("case", "expected"), BAD_DELAYS)
def test_a_bad_delay_says_what_is_wrong_with_it(case: str, expected: str) -> None:
    """Bad durations, inverted ranges and a mean outside [min, max] point at the offending value."""
    assert_refused(case, expected)


@pytest.mark.parametrize(("case", "expected"), BAD_WEIGHTS)
def test_weights_must_be_above_zero(case: str, expected: str) -> None:
    """A chain or branch weight of 0 or below is refused."""
    assert_refused(case, expected)


@pytest.mark.parametrize(("case", "expected"), BAD_STEP_SHAPES)
def test_a_step_emits_an_event_or_chooses_among_two_or_more_branches(case: str, expected: str) -> None:
    """A step has event_type or at least two branches, never both, never neither."""
    assert_refused(case, expected)


@pytest.mark.parametrize(("case", "expected"), UNRESOLVED_NAMES)
def test_chain_names_and_step_ids_are_unique_and_gotos_resolve(case: str, expected: str) -> None:
    """Duplicate names and ids, gotos to unknown steps and unbounded loops are refused."""
    assert_refused(case, expected)


@pytest.mark.parametrize(("case", "expected"), BAD_NAMES)
def test_names_and_locales_must_have_their_form(case: str, expected: str) -> None:
    """Chain names, var names and locales are checked against their pattern, locales against Faker's."""
    assert_refused(case, expected)


@pytest.mark.parametrize(("case", "expected"), TEMPLATE_SYNTAX)
def test_a_template_syntax_error_points_at_the_broken_line(case: str, expected: str) -> None:
    """A Jinja syntax error is a load error at its line in the YAML file (exact inside a | block)."""
    assert_refused(case, expected)


@pytest.mark.parametrize(("case", "expected"), DRY_RUN_FAILURES)
def test_a_template_that_fails_on_a_dry_run_names_what_is_missing(case: str, expected: str) -> None:
    """Undefined names, vars, steps, data lists and Faker generators are caught before any event."""
    assert_refused(case, expected)


@pytest.mark.parametrize(("case", "expected"), REFUSED_FILES)
def test_a_file_that_is_not_plain_safe_yaml_is_refused(case: str, expected: str) -> None:
    """Bad syntax, duplicate keys, tags, alias bombs, deep nests, non-UTF-8 and empty files are refused."""
    assert_refused(case, expected)


def test_a_folder_without_chain_files_is_refused() -> None:
    """A folder with no *.yaml files is a problem, not an empty catalog."""
    assert_refused("empty_folder", """\
.: no chain files (*.yaml, *.yml) in this folder
  hint: each chain is one YAML file in this folder; shared data lists go under data/
1 problem in 1 file
""")


def test_a_folder_that_does_not_exist_is_refused() -> None:
    """--chains naming no folder says so, with an example."""
    result = validate("does_not_exist", INVALID)
    expected = """\
does_not_exist: no such folder
  hint: give the folder of chain files, e.g. --chains chains/
1 problem in 1 file
"""
    assert (EXIT_INVALID, "", expected) == (result.returncode, result.stdout, result.stderr)


def test_every_problem_of_every_file_is_printed_sorted_by_file_then_line() -> None:
    """Problems of all files are collected, not just the first, and sorted by file, then line."""
    assert_refused("several_broken_files", """\
a_agent.yaml:2:9: $.weight: must be above 0, found 0
  at chain 'agent' > key 'weight'
  hint: weights are relative and above 0; to turn something off, remove it
a_agent.yaml:9:5: $.steps[1].paylod: unknown key 'paylod'
  at chain 'agent' > step 'completed' > key 'paylod'
  hint: did you mean 'payload'?
b_query.yaml:5:11: $.steps[0].goto: goto names unknown step 'finishd'
  at chain 'query' > step 'requested' > key 'goto'
  hint: did you mean 'finished'?
b_query.yaml:7:12: $.steps[1].delay: max (500ms) is below min (1.5s)
  at chain 'query' > step 'finished' > key 'delay'
  hint: a delay range is [min, max] in milliseconds, e.g. delay: [500, 1500]
c_broken.yaml:5:1: $: invalid YAML: expected ',' or ']', but got '<stream end>' (while parsing a flow sequence at line 4)
  hint: a [ is not closed: add the ], or quote a value that starts with [
d_template.yaml:6:13: $.steps[0].payload.user: template error: faker has no generator 'nme'; did you mean 'name'?
  at chain 'template' > step 'requested' > key 'payload.user'
  hint: see https://faker.readthedocs.io/en/stable/providers.html for generator names
6 problems in 4 files
""")


def test_a_deeply_nested_template_expression_is_a_load_error() -> None:
    """An expression nested thousands of parentheses deep is a template problem, not an internal error."""
    assert_refused("deep_template_expression", """\
chain.yaml:6:10: $.steps[0].payload.x: template syntax error: template nests too deeply
  at chain 'demo' > step 'requested' > key 'payload.x'
  hint: check the {{ }} and {% %} pairs of this template
1 problem in 1 file
""")


@pytest.mark.parametrize("case", ["alias_bomb", "deep_nesting"])
def test_an_alias_bomb_or_a_deep_nest_is_refused_without_hanging(case: str) -> None:
    """The YAML limits stop a billion-laughs file and a 100,000-level nest before they cost time or stack."""
    text = (INVALID / case / "chain.yaml").read_text(encoding="utf-8")
    began = time.perf_counter()
    with pytest.raises(_yaml.YamlError):
        _yaml.load(text)
    # Not a speed target (bench/ measures speed): unrefused, these take minutes and gigabytes.
    assert time.perf_counter() - began < HANG


def test_the_chains_folder_is_valid() -> None:
    """The chains shipped in chains/ validate cleanly, and so do the scenarios of scenarios/ on them: the summary
    line, then one line of figures per chain."""
    result = validate("chains", ROOT)
    count, scenarios = len(chain_files(CHAINS)), len(chain_files(ROOT / "scenarios"))
    lines = result.stderr.splitlines()
    assert (0, "", f"chains: {count} chains valid; scenarios: {scenarios} scenarios valid", count) == (
        result.returncode, result.stdout, lines[0], len([line for line in lines[1:] if " events, " in line]))


def test_a_var_cannot_use_names_that_exist_only_for_events() -> None:
    """vars are drawn before the first event, so elapsed_ms, event, steps... are not in their scope."""
    assert_refused("var_uses_event_scope", """\
chain.yaml:3:12: $.vars.started: template error: 'elapsed_ms' is undefined
  at chain 'demo' > key 'vars.started'
  hint: names in scope: vars (those above this one), data, faker, random, chain
1 problem in 1 file
""")


# ---- hostile input: each class refused at its place, with a hint (more than one case per class) --------

NOT_FINITE = [
    ("nan_delay", """\
chain.yaml:6:12: $.steps[1].delay: .nan is not a finite number
  at chain 'demo' > step 'completed' > key 'delay'
  hint: a number here is finite: JSON has no NaN or infinity; write a number, or quote it ('.inf') for text
1 problem in 1 file
"""),
    ("infinite_chain_weight", """\
chain.yaml:2:9: $.weight: .inf is not a finite number
  at chain 'demo' > key 'weight'
  hint: a number here is finite: JSON has no NaN or infinity; write a number, or quote it ('.inf') for text
1 problem in 1 file
"""),
    ("infinite_branch_weight", """\
chain.yaml:6:17: $.steps[0].branches[0].weight: .Inf is not a finite number
  at chain 'demo' > step 'finished' > branch 'completed' > key 'weight'
  hint: a number here is finite: JSON has no NaN or infinity; write a number, or quote it ('.inf') for text
1 problem in 1 file
"""),
    ("minus_infinite_stddev", """\
chain.yaml:4:53: $.steps[0].delay.stddev: -.inf is not a finite number
  at chain 'demo' > step 'requested' > key 'delay.stddev'
  hint: a number here is finite: JSON has no NaN or infinity; write a number, or quote it ('.inf') for text
1 problem in 1 file
"""),
    ("nan_in_payload", """\
chain.yaml:6:14: $.steps[0].payload.ratio: .NaN is not a finite number
  at chain 'demo' > step 'requested' > key 'payload.ratio'
  hint: a number here is finite: JSON has no NaN or infinity; write a number, or quote it ('.inf') for text
1 problem in 1 file
"""),
    ("nan_in_data_file", """\
data/limits.yaml:1:6: $.max: .inf is not a finite number
  at data file > key 'max'
  hint: a number here is finite: JSON has no NaN or infinity; write a number, or quote it ('.inf') for text
1 problem in 1 file
"""),
]

TOO_LARGE = [
    ("delay_too_long", """\
chain.yaml:6:12: $.steps[1].delay: must be at most 31,622,400,000, found 1e+20
  at chain 'demo' > step 'completed' > key 'delay'
  hint: the longest delay is 366 days (31,622,400,000 ms)
1 problem in 1 file
"""),
    ("delay_range_too_long", """\
chain.yaml:6:12: $.steps[1].delay: max (99999999h) is longer than the longest delay, 366 days
  at chain 'demo' > step 'completed' > key 'delay'
  hint: the longest delay is 366 days (31,622,400,000 ms)
1 problem in 1 file
"""),
    ("sigma_too_large", """\
chain.yaml:4:57: $.steps[0].delay.sigma: must be at most 10, found 1e+300
  at chain 'demo' > step 'requested' > key 'delay.sigma'
  hint: sigma is the spread of the logarithm: 0.5 is usual, 3 is already very wide
1 problem in 1 file
"""),
]

YAML_11 = [
    ("yaml11_yes", """\
chain.yaml:5:10: $.steps[0].end: 'yes' is a boolean in YAML 1.1 and text in YAML 1.2
  at chain 'demo' > step 'requested' > key 'end'
  hint: YAML 1.1 reads 'yes' as true, YAML 1.2 as text: write true for a boolean, or quote it ('yes') for text
1 problem in 1 file
"""),
    ("yaml11_off_in_payload", """\
chain.yaml:6:15: $.steps[0].payload.notify: 'Off' is a boolean in YAML 1.1 and text in YAML 1.2
  at chain 'demo' > step 'requested' > key 'payload.notify'
  hint: YAML 1.1 reads 'Off' as false, YAML 1.2 as text: write false for a boolean, or quote it ('Off') for text
1 problem in 1 file
"""),
    ("yaml11_octal", """\
chain.yaml:6:12: $.steps[0].payload.zip: '010' is the number 8 in YAML 1.1 and 10 in YAML 1.2
  at chain 'demo' > step 'requested' > key 'payload.zip'
  hint: YAML 1.1 reads '010' as 8, YAML 1.2 as 10: write the number you mean plainly (10 or 0o10), or quote it ('010') for text
1 problem in 1 file
"""),
    ("yaml11_base60", """\
chain.yaml:4:12: $.steps[0].delay: '1:30' is the number 90 in YAML 1.1 and text in YAML 1.2
  at chain 'demo' > step 'requested' > key 'delay'
  hint: YAML 1.1 reads '1:30' as 90, YAML 1.2 as text: write the number you mean plainly (90), or quote it ('1:30') for text
1 problem in 1 file
"""),
    ("yaml11_underscore", """\
chain.yaml:6:13: $.steps[0].payload.rows: '125_000_000' is the number 125000000 in YAML 1.1 and text in YAML 1.2
  at chain 'demo' > step 'requested' > key 'payload.rows'
  hint: YAML 1.1 reads '125_000_000' as 125000000, YAML 1.2 as text: write the number you mean plainly (125000000), or quote it ('125_000_000') for text
1 problem in 1 file
"""),
    ("null_key", """\
chain.yaml:6:7: $.steps[0].payload.null: the key 'null' is read as null
  at chain 'demo' > step 'requested' > key 'payload.null'
  hint: keys are text: quote it ('null') if you mean the word
1 problem in 1 file
"""),
    ("true_key", """\
chain.yaml:6:7: $.steps[0].payload.true: the key 'true' is read as a boolean
  at chain 'demo' > step 'requested' > key 'payload.true'
  hint: keys are text: quote it ('true') if you mean the word
1 problem in 1 file
"""),
]

RECURSIVE_ALIASES = [
    ("recursive_alias_list", """\
chain.yaml:5:14: $: alias *steps stands inside its own anchor &steps: a recursive alias
  hint: an anchor cannot contain an alias of itself; write the repeated part out
1 problem in 1 file
"""),
    ("recursive_alias_mapping", """\
chain.yaml:3:10: $: alias *vars stands inside its own anchor &vars: a recursive alias
  hint: an anchor cannot contain an alias of itself; write the repeated part out
1 problem in 1 file
"""),
]

CHARACTERS = [
    ("nul_in_event_type", """\
chain.yaml:4:17: $.steps[0].event_type: control character U+0000 (character 6) in the event type
  at chain 'demo' > step 'requested' > key 'event_type'
  hint: ids, names and types are plain text: remove the control character
1 problem in 1 file
"""),
    ("control_character_in_step_id", """\
chain.yaml:3:9: $.steps[0].id: control character U+0007 (character 10) in the step id
  at chain 'demo' > step 'requested\\x07' > key 'id'
  hint: ids, names and types are plain text: remove the control character
1 problem in 1 file
"""),
    ("control_character_in_tenant", """\
chain.yaml:3:14: $.envelope.tenant_id: control character U+001B (character 5) in the tenant id
  at chain 'demo' > key 'envelope.tenant_id'
  hint: ids, names and types are plain text: remove the control character
1 problem in 1 file
"""),
    ("lone_surrogate_in_payload", """\
chain.yaml:6:13: $.steps[0].payload.text: the text holds a lone surrogate U+D800 (character 2), which is not a character
  at chain 'demo' > step 'requested' > key 'payload.text'
  hint: write the character itself (files are UTF-8), or \\U0001F600 for one beyond U+FFFF
1 problem in 1 file
"""),
    ("lone_surrogate_in_key", """\
chain.yaml:6:7: $.steps[0].payload.k\\udfff: the text holds a lone surrogate U+DFFF (character 2), which is not a character
  at chain 'demo' > step 'requested' > key 'payload.k\\\\udfff'
  hint: write the character itself (files are UTF-8), or \\U0001F600 for one beyond U+FFFF
1 problem in 1 file
"""),
]

NOT_TEMPLATES = [
    ("template_in_event_type", """\
chain.yaml:4:17: $.steps[0].event_type: the event type is not a template
  at chain 'demo' > step 'requested' > key 'event_type'
  hint: event_type is written as is, not rendered: make it plain text; put what varies in the payload
1 problem in 1 file
"""),
    ("template_in_tenant_id", """\
chain.yaml:2:23: $.envelope.tenant_id: the tenant id is not a template
  at chain 'demo' > key 'envelope.tenant_id'
  hint: tenant_id is written as is, not rendered: make it plain text; put what varies in the payload
1 problem in 1 file
"""),
    ("template_in_outcome", """\
chain.yaml:5:14: $.steps[0].outcome: the outcome is not a template
  at chain 'demo' > step 'requested' > key 'outcome'
  hint: outcome is written as is, not rendered: make it plain text; put what varies in the payload
1 problem in 1 file
"""),
]


@pytest.mark.parametrize(("case", "expected"), NOT_FINITE, ids=[case for case, _ in NOT_FINITE])
def test_numbers_that_are_not_finite_are_refused_where_they_stand(case: str, expected: str) -> None:
    """.nan, .inf and -.inf are refused wherever a number is read: delays, weights, parameters, payloads, data."""
    assert_refused(case, expected)


@pytest.mark.parametrize(("case", "expected"), TOO_LARGE, ids=[case for case, _ in TOO_LARGE])
def test_numbers_too_large_to_mean_anything_are_refused(case: str, expected: str) -> None:
    """A delay longer than 366 days (as a number or a duration) and an absurd sigma are load errors."""
    assert_refused(case, expected)


@pytest.mark.parametrize(("case", "expected"), YAML_11, ids=[case for case, _ in YAML_11])
def test_values_yaml_1_1_would_read_otherwise_are_refused_with_both_readings(case: str, expected: str) -> None:
    """yes/off, 010, 1:30, 1_000 mean one thing in YAML 1.1 and another in 1.2: refused, saying both; a key
    read as null or a boolean is refused."""
    assert_refused(case, expected)


@pytest.mark.parametrize(("case", "expected"), RECURSIVE_ALIASES, ids=[case for case, _ in RECURSIVE_ALIASES])
def test_an_anchor_that_contains_itself_is_refused_at_the_alias(case: str, expected: str) -> None:
    """A recursive alias is a located error (not a RecursionError), in a list or a mapping."""
    assert_refused(case, expected)


@pytest.mark.parametrize(("case", "expected"), CHARACTERS, ids=[case for case, _ in CHARACTERS])
def test_characters_that_do_not_belong_are_refused_with_their_position(case: str, expected: str) -> None:
    """Control characters in ids, types and tenants, lone surrogates in values and keys: at the value."""
    assert_refused(case, expected)


@pytest.mark.parametrize(("case", "expected"), NOT_TEMPLATES, ids=[case for case, _ in NOT_TEMPLATES])
def test_template_syntax_where_nothing_is_rendered_is_refused(case: str, expected: str) -> None:
    """event_type, tenant_id and outcome are written as is: {{ }} or {% %} there is an error, not a surprise."""
    assert_refused(case, expected)


def test_yaml_1_2_reads_what_a_person_means(catalog_of) -> None:
    """Keys are text as written (on, 200, 010), 0o17 and 0x1F are numbers, 1e3 is a number, ~ is null."""
    from .conftest import run

    catalog = catalog_of({"c.yaml": """
        name: demo
        steps:
          - id: a
            event_type: demo.a.v1
            payload: {on: push, 200: ok, "010": zip, octal: 0o17, hex: 0x1F, big: 1e3, none: ~, t: true}
    """})
    assert {"on": "push", "200": "ok", "010": "zip", "octal": 15, "hex": 31, "big": 1000.0, "none": None,
            "t": True} == run(catalog, count=1)[0]["payload"]


def _entries_that_are_not_files(folder: Path) -> None:
    import os

    (folder / "ok.yaml").write_text("name: ok\nsteps: [{id: a, event_type: ok.a.v1}]\n")
    os.mkfifo(folder / "pipe.yaml")
    (folder / "zero.yaml").symlink_to("/dev/zero")
    with open(folder / "huge.yaml", "wb") as huge:
        huge.truncate(3 * 1024**3)  # a sparse file of 3 GiB
    (folder / "dir.yaml").mkdir()
    (folder / "dangling.yaml").symlink_to(folder / "nowhere")


def test_entries_that_are_not_files_are_refused_by_name_without_reading(tmp_path: Path) -> None:
    """A FIFO, a link to /dev/zero, a 3 GiB file, a folder and a dangling link in the chains folder: each
    refused by name at once (no hang, no read without a bound), the regular file beside them still checked."""
    folder = tmp_path / "chains"
    folder.mkdir()
    _entries_that_are_not_files(folder)
    started = time.monotonic()
    result = validate(".", folder)
    assert time.monotonic() - started < HANG
    assert (EXIT_INVALID, """\
dangling.yaml: cannot read: No such file or directory
dir.yaml: not a regular file: a folder
  hint: the chains folder holds chain files (*.yaml) only; move or remove this entry
huge.yaml: file is larger than 2000000 bytes (3,221,225,472)
  hint: chain files are small; split the data into files under data/, each below 2,000,000 bytes
pipe.yaml: not a regular file: a FIFO (named pipe)
  hint: the chains folder holds chain files (*.yaml) only; move or remove this entry
zero.yaml: not a regular file: a character device (through a symbolic link)
  hint: the chains folder holds chain files (*.yaml) only; move or remove this entry
5 problems in 5 files
""") == (result.returncode, result.stderr)


def test_a_data_entry_that_is_a_fifo_is_refused_too(tmp_path: Path) -> None:
    """The data/ folder is read with the same bounds."""
    import os

    folder = tmp_path / "chains"
    (folder / "data").mkdir(parents=True)
    (folder / "ok.yaml").write_text("name: ok\nsteps: [{id: a, event_type: ok.a.v1}]\n")
    os.mkfifo(folder / "data" / "list.yaml")
    result = validate(".", folder)
    assert (EXIT_INVALID, """\
data/list.yaml: not a regular file: a FIFO (named pipe)
  hint: the chains folder holds chain files (*.yaml) only; move or remove this entry
1 problem in 1 file
""") == (result.returncode, result.stderr)


COMPUTED_DELAYS = [
    ("computed_delay_syntax_error", """\
chain.yaml:6:23: $.steps[1].delay.template: template syntax error: unexpected '}'
  at chain 'demo' > step 'retried' > key 'delay.template'
  hint: check the {{ }} and {% %} pairs of this template
1 problem in 1 file
"""),
    ("computed_delay_not_a_duration", """\
chain.yaml:6:23: $.steps[1].delay.template: template error: the delay template gave 'soon', which is not a duration
  at chain 'demo' > step 'retried' > key 'delay.template'
  hint: a computed delay's template gives milliseconds (a number) or a duration such as '1.5s'
1 problem in 1 file
"""),
    ("computed_delay_without_max", """\
chain.yaml:6:12: $.steps[1].delay: missing required key 'max'
  at chain 'demo' > step 'retried' > key 'delay'
  hint: distributions and computed delays are bounded: add max, e.g. max: 5s
1 problem in 1 file
"""),
]


@pytest.mark.parametrize(("case", "expected"), COMPUTED_DELAYS, ids=[case for case, _ in COMPUTED_DELAYS])
def test_a_computed_delay_is_checked_at_load_time_like_every_template(case: str, expected: str) -> None:
    """A computed delay's template is compiled and dry-run; it needs a max; a result that is no duration is
    refused at its place."""
    assert_refused(case, expected)


def test_a_loop_that_skips_past_its_bound_is_refused_before_the_dry_run() -> None:
    """A forward goto into a branch's own steps, whose flow returns through the capped step's goto without
    visiting it: a loop no max_visits bounds. Refused at once, where the dry run would never end."""
    started = time.perf_counter()
    assert_refused("loop_past_its_bound", """\
chain.yaml:7:11: $.steps[1].goto: a loop no max_visits bounds: requested > queued > resumed > requested
  at chain 'demo' > step 'queued' > key 'goto'
  hint: put max_visits on a step every pass of the loop goes through (here: requested, queued, resumed), e.g. max_visits: 3
1 problem in 1 file
""")
    assert time.perf_counter() - started < HANG
