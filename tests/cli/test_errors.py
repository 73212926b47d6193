"""One error wrapper for every sub-command: one line on stderr and a meaningful exit code."""

from __future__ import annotations

from pathlib import Path

import pytest

from longisynth.cli import main
from longisynth.cli.errors import EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_OK, guarded
from longisynth.errors import LesionDoesNotFitError, ModelUnavailableError


def _raise(exc: BaseException) -> int:
    raise exc


@pytest.mark.parametrize(
    ("exc", "code", "line"),
    [
        (LesionDoesNotFitError("a 90 mm nodule does not fit"), EXIT_BAD_INPUT, "longisynth: error: a 90 mm"),
        (ModelUnavailableError("no model"), EXIT_INTERNAL, "longisynth: error: no model"),
        (
            ZeroDivisionError("division by zero"),
            EXIT_INTERNAL,
            "longisynth: internal error: ZeroDivisionError",
        ),
        (KeyboardInterrupt(), EXIT_INTERRUPTED, "longisynth: interrupted"),
    ],
)
def test_errors_become_one_line_and_an_exit_code(
    exc: BaseException, code: int, line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cleaned: list[bool] = []
    assert guarded(lambda: _raise(exc), cleanup=lambda: cleaned.append(True)) == code
    err = capsys.readouterr().err
    assert err.startswith(line) and len(err.strip().splitlines()) == 1
    assert cleaned == [True]


def test_debug_shows_the_traceback_and_success_passes_through() -> None:
    with pytest.raises(ZeroDivisionError):
        guarded(lambda: _raise(ZeroDivisionError("x")), debug=True)
    assert guarded(lambda: EXIT_OK) == EXIT_OK


def test_serve_outside_a_checkout_says_where_to_run_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", "--service-dir", str(tmp_path)]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "no service/service.py" in err and "--service-dir" in err and len(err.strip().splitlines()) == 1


def test_inspect_of_a_non_bundle_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bogus = tmp_path / "x.zip"
    bogus.write_bytes(b"not a zip")
    assert main(["inspect", str(bogus)]) == EXIT_BAD_INPUT
    assert "not a longisynth bundle" in capsys.readouterr().err
