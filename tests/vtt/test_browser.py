"""The reading page in real headless Chromium (selenium): read, reload, resume, finish.

Needs Debian's ``chromium`` and ``chromium-driver`` at /usr/bin and the ``selenium`` package;
skipped with the reason otherwise.
"""

from __future__ import annotations

import json
import sqlite3
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from longisynth.vtt.store import DB_NAME

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
SCREENSHOT = Path("/tmp/vtt_page.png")

pytestmark = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
    reason="headless browser test needs /usr/bin/chromium and /usr/bin/chromedriver "
    "(apt-get install chromium chromium-driver)",
)


def decode_png(data: bytes) -> NDArray[np.uint8]:
    """8-bit RGB/RGBA non-interlaced PNG -> (h, w, channels) array (stdlib only; enough for screenshots)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos : pos + 4]), data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and colour in (2, 6) and interlace == 0
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = np.frombuffer(zlib.decompress(idat), dtype=np.uint8).reshape(height, 1 + width * channels)
    out = np.zeros((height, width * channels), dtype=np.int32)
    for y in range(height):
        f, line = raw[y, 0], raw[y, 1:].astype(np.int32)
        prev = out[y - 1] if y else np.zeros_like(line)
        if f == 0:
            out[y] = line
        elif f == 2:
            out[y] = (line + prev) % 256
        else:  # 1 sub, 3 average, 4 Paeth: left neighbours needed, so pixel by pixel
            row = out[y]
            for x in range(line.size):
                a = row[x - channels] if x >= channels else 0
                b, c = prev[x], (prev[x - channels] if x >= channels else 0)
                if f == 1:
                    pred = a
                elif f == 3:
                    pred = (a + b) // 2
                else:
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                row[x] = (line[x] + pred) % 256
    return out.reshape(height, width, channels).astype(np.uint8)


@pytest.fixture
def driver() -> Iterator[Any]:
    webdriver = pytest.importorskip("selenium.webdriver", reason="pip install selenium")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1440,860",
        "--hide-scrollbars",
    ):
        opts.add_argument(arg)
    drv = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)
    drv.set_page_load_timeout(20)
    yield drv
    drv.quit()


def test_read_reload_resume_finish(driver: Any, vtt_server: str, vtt_study: Path) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.actions.wheel_input import ScrollOrigin
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, 15)
    el = lambda css: driver.find_element(By.CSS_SELECTOR, css)  # noqa: E731

    def at_item(index: int) -> None:
        wait.until(lambda d: el("#item-counter").get_attribute("data-index") == str(index))

    driver.get(vtt_server)
    wait.until(lambda d: el("#login").is_displayed())
    el("#reader-input").send_keys("alice")
    el("#start").click()
    at_item(0)
    wait.until(lambda d: el("#pos-axial").text == "25 / 48")
    assert el("#item-counter").text == "· Item 1 of 5"

    # Scroll the axial view with the mouse wheel, then switch presets.
    ActionChains(driver).scroll_from_origin(ScrollOrigin.from_element(el("#view-axial")), 0, 120).perform()
    wait.until(lambda d: el("#pos-axial").text == "26 / 48")
    presets = [b.text for b in driver.find_elements(By.CSS_SELECTOR, "#presets button")]
    assert presets == ["Lung", "Soft tissue"]
    el("#presets button[data-name='Soft tissue']").click()
    assert el("#win-width").get_attribute("value") == "400"
    el("#presets button[data-name='Lung']").click()
    assert el("#win-level").get_attribute("value") == "-600"

    png = driver.get_screenshot_as_png()
    SCREENSHOT.write_bytes(png)
    shot = decode_png(png)[..., :3].astype(float)
    scale = driver.execute_script("return window.devicePixelRatio") or 1
    r = el("#view-axial").rect
    x0, y0 = round(r["x"] * scale), round(r["y"] * scale)
    x1, y1 = round((r["x"] + r["width"]) * scale), round((r["y"] + r["height"]) * scale)
    assert r["width"] >= 250 and r["height"] >= 250
    assert shot[y0:y1, x0:x1].var() > 100, "the axial canvas looks blank"

    # Item 1: keyboard answer plus a cue and a note; item 2: mouse only.
    assert el("#submit").get_attribute("disabled") is not None
    ActionChains(driver).send_keys("s").send_keys("4").perform()
    el("#cue-texture").click()
    el("#note").send_keys("edges too smooth")
    el("#submit").click()
    at_item(1)
    el("#call-real").click()
    el("#confidence label:nth-child(2) span").click()
    el("#submit").click()
    at_item(2)

    driver.refresh()  # resumes at the first unanswered item for the stored reader
    at_item(2)
    assert el("#item-counter").text == "· Item 3 of 5"
    for _ in range(3):
        index = int(el("#item-counter").get_attribute("data-index"))
        ActionChains(driver).send_keys("r").send_keys("3").send_keys("\n").perform()
        at_item(index + 1)
    wait.until(lambda d: el("#done").is_displayed())

    ids = [it["id"] for it in json.loads((vtt_study / "study.json").read_text())["items"]]
    con = sqlite3.connect(vtt_study / DB_NAME)
    rows = {
        r[0]: r[1:]
        for r in con.execute(
            "SELECT item_id, reader_id, call, confidence, cues, note, elapsed_ms FROM answers"
        )
    }
    con.close()
    assert set(rows) == set(ids)
    assert rows[ids[0]][:5] == ("alice", "synthetic", 4, '["texture"]', "edges too smooth")
    assert rows[ids[1]][:4] == ("alice", "real", 2, "[]")
    assert all(rows[i][1:3] == ("real", 3) for i in ids[2:])
    assert all(r[5] > 0 for r in rows.values())
