"""One error wrapper for every sub-command: errors become one readable line, never a traceback.

Exit codes: 0 success, 1 internal error (a bug, or the learned model unavailable where required),
2 bad input (unreadable file, prompt not understood, a request that does not fit the anatomy),
130 interrupted. Sub-commands with their own meaning of 1 (``evaluate``: a hard check failed)
return it themselves.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from longisynth.errors import LongisynthError, ModelUnavailableError

EXIT_OK, EXIT_INTERNAL, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


def say(message: str) -> None:
    """One line on stderr, prefixed like every other message of the command line."""
    print(f"longisynth: {message}", file=sys.stderr)


def guarded(
    run: Callable[[], int],
    *,
    debug: bool = False,
    cleanup: Callable[[], None] | None = None,
    interrupted: str = "interrupted",
) -> int:
    """Call ``run`` and turn what it raises into an exit code and one line on stderr.

    ``cleanup`` runs first whatever happens (e.g. stopping a progress bar); ``debug`` re-raises
    internal errors with their traceback; ``interrupted`` is the line printed on Ctrl-C.
    """
    try:
        code = run()
    except BaseException as exc:
        if cleanup is not None:
            cleanup()
        return _exit_code(exc, debug, interrupted)
    if cleanup is not None:
        cleanup()
    return code


def _exit_code(exc: BaseException, debug: bool, interrupted: str) -> int:
    if isinstance(exc, BrokenPipeError):
        # the reader stopped early (``longisynth library list | head``): not an error; keep Python
        # from complaining again when it flushes stdout at exit
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    if isinstance(exc, ModelUnavailableError):
        say(f"error: {exc}")
        return EXIT_INTERNAL
    if isinstance(exc, LongisynthError):
        say(f"error: {exc}")
        return EXIT_BAD_INPUT
    if isinstance(exc, KeyboardInterrupt):
        say(interrupted)
        return EXIT_INTERRUPTED
    if isinstance(exc, SystemExit) or not isinstance(exc, Exception) or debug:
        raise exc
    say(f"internal error: {type(exc).__name__}: {exc} (rerun with --debug)")
    return EXIT_INTERNAL
