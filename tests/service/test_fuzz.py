"""A bounded, seeded schemathesis run over the served OpenAPI (issue 16): no 5xx, and every
response conforms to the schema (status codes, content types, bodies)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.service._server import Server, start, stop

pytestmark = pytest.mark.xdist_group("server")
KEY = "fuzz-key"
EXAMPLES_PER_OPERATION = 40
SEED = 16


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {
        "LONGISYNTH_API_KEYS": KEY,
        "LONGISYNTH_REFINER": "off",
        "LONGISYNTH_MAX_UPLOAD_BYTES": str(8 << 20),
        # one study at a time, two waiting: valid fuzzed jobs cannot pile up; beyond, a quick 429
        "LONGISYNTH_MAX_CONCURRENCY": "1",
        "LONGISYNTH_MAX_QUEUE": "2",
    }
    srv = start(tmp_path_factory.mktemp("fuzz_tmp"), env)
    yield srv
    stop(srv)


def test_schemathesis_finds_no_server_error_and_no_schema_violation(server: Server, tmp_path: Path) -> None:
    st = shutil.which("st") or str(Path(sys.executable).with_name("st"))
    if not Path(st).exists():
        pytest.skip("schemathesis is not installed (pip install -e '.[test]')")
    checks = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
    t0 = time.monotonic()
    res = subprocess.run(
        [
            st, "run", f"{server.url}/openapi.json",
            "--header", f"X-API-Key: {KEY}",
            "--checks", checks,
            "--phases", "fuzzing",
            "--max-examples", str(EXAMPLES_PER_OPERATION),
            "--seed", str(SEED),
            "--no-shrink",
            "--request-timeout", "120",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,  # its .schemathesis/ cache stays out of the checkout
    )  # fmt: skip
    out = res.stdout + res.stderr
    counts = re.search(r"(\d+) generated, (\d+) passed", out)
    print(f"schemathesis: {counts.group(0) if counts else '?'} in {time.monotonic() - t0:.0f} s")
    assert res.returncode == 0, out[-4000:]
    assert counts is not None and int(counts.group(1)) >= 120 and counts.group(1) == counts.group(2), out[
        -2000:
    ]
