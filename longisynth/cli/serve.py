"""``longisynth serve``: start the HTTP service (BentoML) from the folder that holds ``service/``.

The command *becomes* BentoML (``exec``): the process a supervisor started is BentoML's arbiter,
so its SIGTERM/SIGINT reach the server itself and stop it gracefully (a wrapper that waited on a
child exited alone, leaving the server running).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from longisynth.cli.errors import guarded
from longisynth.errors import InvalidInputError


def add_serve_command(sub: Any) -> None:
    s = sub.add_parser("serve", help="start the HTTP service (BentoML) on this machine")
    s.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    s.add_argument("--port", type=int, default=3000)
    s.add_argument(
        "--service-dir",
        type=Path,
        default=None,
        help="folder holding service/service.py (default: the current folder — the checkout, or /app "
        "in the container)",
    )


def run_serve_command(args: argparse.Namespace) -> int:
    """Run ``bentoml serve service.service:Longisynth``; limits and keys come from LONGISYNTH_* variables."""
    return guarded(lambda: _serve(args.host, args.port, args.service_dir or Path.cwd()))


def _serve(host: str, port: int, root: Path) -> int:
    # The service is not part of the engine package: it is the folder service/ of the checkout or
    # of the container's working directory, named explicitly or found in the current folder.
    if not (root / "service" / "service.py").is_file():
        raise InvalidInputError(
            f"no service/service.py in {str(root)!r}: run from the project checkout (or the container's "
            "/app), or pass --service-dir"
        )
    bentoml = shutil.which("bentoml") or str(Path(sys.executable).with_name("bentoml"))
    if not Path(bentoml).exists():
        raise InvalidInputError("the service needs BentoML: pip install -e '.[serve]'")
    cmd = [bentoml, "serve", "service.service:Longisynth", "--host", host, "--port", str(port)]
    sys.stdout.flush()
    sys.stderr.flush()
    os.chdir(root)
    os.execv(bentoml, [*cmd, "--working-dir", str(root)])  # does not return
