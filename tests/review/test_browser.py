"""The review page in real headless Chromium (selenium): open, accept one case, reject one with a
reason, reload to resume, then export without the rejected case.

Needs Debian's ``chromium`` and ``chromium-driver`` at /usr/bin and the ``selenium`` package;
skipped with the reason otherwise.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from longisynth.cli import main
from tests.review.conftest import N_CASES
from tests.vtt.test_browser import CHROMEDRIVER, CHROMIUM, decode_png, driver  # noqa: F401

SCREENSHOT = Path("/tmp/review_page.png")

pytestmark = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
    reason="headless browser test needs /usr/bin/chromium and /usr/bin/chromedriver "
    "(apt-get install chromium chromium-driver)",
)


def test_review_answer_reload_resume_export(
    driver: Any,  # noqa: F811
    review_server: str,
    review_run: Path,
    tmp_path: Path,
) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    wait = WebDriverWait(driver, 20)
    el = lambda css: driver.find_element(By.CSS_SELECTOR, css)  # noqa: E731
    with (review_run / "manifest.csv").open() as fh:
        ids = [r["case_id"] for r in csv.DictReader(fh)]

    def at_case(index: int) -> None:
        wait.until(lambda d: el("#case-counter").get_attribute("data-index") == str(index))
        wait.until(lambda d: el("#case-label").get_attribute("data-case") == ids[index])

    def status(case_id: str) -> str:
        return str(el(f"#case-list li[data-case='{case_id}']").get_attribute("data-status"))

    driver.get(review_server)
    at_case(0)
    assert el("#case-counter").text.startswith(f"· Case 1 of {N_CASES}")
    # every timepoint side by side, three views each, on the VTT's viewer and presets
    n_tp = len(driver.find_elements(By.CSS_SELECTOR, "canvas[id^='view-axial-']"))
    assert n_tp >= 2 and len(driver.find_elements(By.CSS_SELECTOR, "#views canvas")) == 3 * n_tp
    assert [b.text for b in driver.find_elements(By.CSS_SELECTOR, "#presets button")] == [
        "Lung",
        "Soft tissue",
    ]
    el("#presets button[data-name='Lung']").click()
    assert el("#win-level").get_attribute("value") == "-600"
    el("#show-mask").click()  # the lesion mask as a red tint
    png = driver.get_screenshot_as_png()
    SCREENSHOT.write_bytes(png)
    shot = decode_png(png)[..., :3].astype(float)
    scale = driver.execute_script("return window.devicePixelRatio") or 1
    r = el(f"#view-axial-{n_tp - 1}").rect
    x0, y0 = round(r["x"] * scale), round(r["y"] * scale)
    x1, y1 = round((r["x"] + r["width"]) * scale), round((r["y"] + r["height"]) * scale)
    crop = shot[y0:y1, x0:x1]
    assert r["width"] >= 100 and crop.var() > 100, "the last timepoint's axial view looks blank"
    assert ((crop[..., 0] - crop[..., 1]) > 60).any(), "no mask tint in the axial view"

    # Case 1: accept with the keyboard; the reviewer id comes from the server (--reviewer).
    assert el("#submit").get_attribute("disabled") is not None
    assert el("#reviewer-input").get_attribute("value") == "dr_a"
    ActionChains(driver).send_keys("a").perform()
    el("#submit").click()
    at_case(1)
    # Case 2: reject; the reason list is the fixed one, and a reason is required.
    el("#verdict-reject").click()
    assert el("#submit").get_attribute("disabled") is not None
    reasons = [o.get_attribute("value") for o in Select(el("#reason")).options][1:]
    assert "visible_seam" in reasons and "mask_wrong" in reasons and "other" in reasons
    Select(el("#reason")).select_by_value("visible_seam")
    el("#note").send_keys("bright rim at the lower edge")
    el("#submit").click()
    at_case(2)
    assert (status(ids[0]), status(ids[1]), status(ids[2])) == ("accepted", "rejected", "unreviewed")

    driver.refresh()  # resumes at the first case without a verdict; earlier verdicts persist
    at_case(2)
    assert (status(ids[0]), status(ids[1])) == ("accepted", "rejected")
    el(f"#case-list li[data-case='{ids[1]}'] a").click()  # revisit: the saved verdict is shown
    at_case(1)
    assert (
        el("#verdict-reject").is_selected()
        and Select(el("#reason")).first_selected_option.get_attribute("value") == "visible_seam"
    )
    assert "bright rim" in el("#note").get_attribute("value")

    with (review_run / "manifest.csv").open() as fh:
        rows = {r["case_id"]: r for r in csv.DictReader(fh)}
    assert [rows[i]["review_status"] for i in ids] == ["accepted", "rejected", "unreviewed"]
    lines = (review_run / "review" / "verdicts.jsonl").read_text().splitlines()
    assert [json.loads(x)["reviewer"] for x in lines] == ["dr_a", "dr_a"]

    dest = tmp_path / "export"
    argv = ["dataset", "export", str(review_run), "-o", str(dest), "--format", "nnunet", "--skip-rejected"]
    assert main(argv) == 0
    images = next((dest / "nnunet").glob("Dataset*")) / "imagesTr"
    assert not list(images.glob(f"{ids[1]}_*"))
    assert list(images.glob(f"{ids[0]}_*")) and list(images.glob(f"{ids[2]}_*"))
