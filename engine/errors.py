"""Every error chainsim raises, in one family: catch `ChainsimError` to catch them all.

Each one is a person's next step: one line an editor or CI can parse, then where, then a hint.

    chains/agent.yaml:14:12: $.steps[2].delay: max (-5) is below min (50)
      at chain 'agent_execution' > step 'execution_finished' > key 'delay'
      hint: a delay range is [min, max] in milliseconds, e.g. delay: [500, 1500]

    ChainsimError
      LoadError (ValueError)          chain or scenario files are not valid: .problems, .report()
      UsageError (ValueError)         a flag, option or argument the engine cannot use
      RunError (RuntimeError)         a run could not go on; the events before it were kept
        TemplateRunError              a template failed at run time: file, line, chain, step, key
        SinkError                     a sink could not open, write or deliver
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import attrs

Path = tuple[str | int, ...]


def json_path(path: Sequence[str | int]) -> str:
    """`('steps', 2, 'delay')` -> `$.steps[2].delay`."""
    out = "$"
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def located(file: str, line: int, column: int, path: Path, message: str, where: str = "", hint: str = "") -> str:
    """`file:line:col: $.path: message`, then `  at where`, then `  hint: hint` (the parts that are known)."""
    if line:
        text = f"{file}:{line}:{column}: {json_path(path)}: {message}"
    else:  # about a folder or a whole file, not a place in it
        text = f"{file}: {message}"
    if where:
        text += f"\n  at {where}"
    if hint:
        text += f"\n  hint: {hint}"
    return text


@attrs.frozen(order=False)
class Problem:
    """One thing wrong with one file, with everything needed to find and fix it."""

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
        return located(self.file, self.line, self.column, self.path, self.message, self.where, self.hint)


class ChainsimError(Exception):
    """The base of every error chainsim raises on purpose (anything else is a bug)."""


class LoadError(ChainsimError, ValueError):
    """Files are not valid; carries every problem found, sorted by file and line."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = sorted(problems, key=Problem.sort_key)
        super().__init__("\n".join(str(p) for p in self.problems))

    def report(self) -> str:
        count = len(self.problems)
        files = len({p.file for p in self.problems})
        noun = "problem" if count == 1 else "problems"
        tail = f"{count} {noun} in {files} file{'s' if files != 1 else ''}"
        return f"{self}\n{tail}"


ChainError = LoadError  # the name of chainsim 0.1


class UsageError(ChainsimError, ValueError):
    """A command-line flag, option or argument has a value the engine cannot use."""

    def __init__(self, message: str, hint: str = "") -> None:
        self.message, self.hint = message, hint
        super().__init__(message + (f"\n  hint: {hint}" if hint else ""))


class RunError(ChainsimError, RuntimeError):
    """A run could not go on; the events before it were kept."""

    def __init__(self, message: str, hint: str = "") -> None:
        self.message = message
        self.hint = hint
        super().__init__(message + (f"\n  hint: {hint}" if hint else ""))


class TemplateRunError(RunError):
    """A template failed at run time on a draw the load-time dry run did not meet: where it is written."""

    def __init__(self, problem: Problem, chain: str, step: str | None, key: str, cause: BaseException) -> None:
        self.problem, self.chain, self.step, self.key, self.cause = problem, chain, step, key, cause
        self.file, self.line, self.column, self.path = problem.file, problem.line, problem.column, problem.path
        super().__init__(located(problem.file, problem.line, problem.column, problem.path, problem.message,
                                 problem.where), problem.hint)


class SinkError(RunError):
    """A sink could not open its destination, write to it or deliver to it."""


class StoreError(RunError):
    """The event store (engine/store) cannot be opened, is not a chainsim store, or cannot be written or read."""


class RequestError(ChainsimError, ValueError):
    """An HTTP request or WebSocket message the server cannot take: which parameter, what is wrong, what is allowed.
    The server answers it with `status` and this as JSON; it is never a 500."""

    def __init__(self, parameter: str | None, message: str, allowed: str = "", status: int = 400) -> None:
        self.parameter, self.message, self.allowed, self.status = parameter, message, allowed, status
        super().__init__(f"{parameter}: {message}" if parameter else message)

    def body(self) -> dict[str, object]:
        return {"error": {"status": self.status, "parameter": self.parameter, "message": self.message,
                          "allowed": self.allowed or None}}


def command_text(error: ChainsimError) -> str:
    """What a chainsim command (and each of its workers) prints on stderr for one of these errors."""
    if isinstance(error, LoadError):
        return error.report()
    return f"chainsim: error: {error}"
