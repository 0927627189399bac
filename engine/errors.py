"""Errors a person can act on: one parseable line, then where, then a hint.

    chains/agent.yaml:14:12: $.steps[2].delay: max (-5) is below min (50)
      at chain 'agent_execution' > step 'execution_finished' > key 'delay'
      hint: a delay range is [min, max] in milliseconds, e.g. delay: [500, 1500]
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence

import attrs

Path = tuple[str | int, ...]


def json_path(path: Sequence[str | int]) -> str:
    """`('steps', 2, 'delay')` -> `$.steps[2].delay`."""
    out = "$"
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


@attrs.frozen(order=False)
class Problem:
    """One thing wrong with one chain file, with everything needed to find and fix it."""

    file: str
    line: int  # 1-based; 0 when unknown
    column: int  # 1-based; 0 when unknown
    path: Path
    message: str
    where: str = ""  # "chain 'x' > step 'y' > key 'delay'"
    hint: str = ""

    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.file, self.line, self.column, self.message)

    def __str__(self) -> str:
        if self.line:
            text = f"{self.file}:{self.line}:{self.column}: {json_path(self.path)}: {self.message}"
        else:  # about a folder, not a place in a file
            text = f"{self.file}: {self.message}"
        if self.where:
            text += f"\n  at {self.where}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


def did_you_mean(name: str, known: Iterable[str], otherwise: str) -> str:
    """The hint for a name that is not known: the closest known one, else `otherwise`."""
    close = difflib.get_close_matches(name, list(known), n=1)
    return f"did you mean {close[0]!r}?" if close else otherwise


class ChainError(ValueError):
    """Chain files are not valid; carries every problem found, sorted by file and line."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = sorted(problems, key=Problem.sort_key)
        super().__init__("\n".join(str(p) for p in self.problems))

    def report(self) -> str:
        count = len(self.problems)
        files = len({p.file for p in self.problems})
        noun = "problem" if count == 1 else "problems"
        tail = f"{count} {noun} in {files} file{'s' if files != 1 else ''}"
        return f"{self}\n{tail}"


class RunError(RuntimeError):
    """A run could not go on (a template failed at run time, a sink broke); events before it were kept."""

    def __init__(self, message: str, hint: str = "") -> None:
        self.message = message
        self.hint = hint
        super().__init__(message + (f"\n  hint: {hint}" if hint else ""))


class UsageError(ValueError):
    """A command-line flag has a value the engine cannot use."""
