"""Mixed load on a local longisynth server: demo generations and real-CT uploads.

Loopback only. Run (server started with `longisynth serve`):

    .venv/bin/locust -f load_tests/locustfile.py --host http://127.0.0.1:3000 \\
        --headless -u 8 -r 2 -t 60s --csv load_tests/out/run

Set LONGISYNTH_API_KEY if the server has keys, LONGISYNTH_LOAD_SCAN to the NIfTI to upload
(default: the real chest CT crop in ../shared/data). 429 answers are expected when the queue is
full (they carry Retry-After) and are counted as successes of the admission control, not as
failures; any 5xx is a failure.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

from locust import HttpUser, between, task

ROOT = Path(__file__).resolve().parents[1]
SCAN = Path(
    os.environ.get("LONGISYNTH_LOAD_SCAN", ROOT.parent / "shared" / "data" / "totalseg_chest_ct_crop.nii.gz")
)
HEADERS = {"X-API-Key": os.environ["LONGISYNTH_API_KEY"]} if os.environ.get("LONGISYNTH_API_KEY") else {}
PROMPTS = [
    "solid nodule 10 mm",
    "ground-glass nodule 12 mm in the left lung",
    "part-solid nodule 14 mm, right lung",
    "lobulated solid nodule 9 mm, 3 timepoints over 6 months",
]


class Radiologist(HttpUser):
    wait_time = between(0.5, 2.0)

    def on_start(self) -> None:
        self.scan = SCAN.read_bytes() if SCAN.exists() else None

    def _check(self, response) -> None:  # type: ignore[no-untyped-def]
        if response.status_code in (200, 429):
            response.success()
        else:
            response.failure(f"HTTP {response.status_code}: {response.text[:200]}")

    @task(3)
    def demo(self) -> None:
        body = {"kind": "lung", "prompt": random.choice(PROMPTS), "seed": random.randrange(1000)}
        with self.client.post(
            "/generate/demo",
            json=body,
            headers=HEADERS,
            catch_response=True,
            name="/generate/demo",
            timeout=600,
        ) as r:
            self._check(r)

    @task(2)
    def upload(self) -> None:
        if self.scan is None:
            return
        files = {"scan": ("chest.nii.gz", self.scan, "application/gzip")}
        data = {"prompt": random.choice(PROMPTS), "seed": str(random.randrange(1000))}
        with self.client.post(
            "/generate",
            files=files,
            data=data,
            headers=HEADERS,
            catch_response=True,
            name="/generate",
            timeout=600,
        ) as r:
            self._check(r)

    @task(1)
    def health(self) -> None:
        self.client.get("/healthz", name="/healthz")
