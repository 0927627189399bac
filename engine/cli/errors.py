"""The exit codes of the command and its workers (engine.errors.command_text is what they print):

    0    ok (also after Ctrl-C during a run)
    1    internal error (a bug): `--debug` shows the traceback
    2    invalid input: files, flags, sinks, a template that failed at run time
    130  Ctrl-C before the run began
"""

from __future__ import annotations

EXIT_OK, EXIT_INTERNAL, EXIT_INVALID = 0, 1, 2
EXIT_INTERRUPTED = 130  # the shell's code for a command ended by Ctrl-C


def internal_text(error: BaseException) -> str:
    return f"chainsim: internal error: {type(error).__name__}: {error} (run with --debug for details)"
