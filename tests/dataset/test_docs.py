"""The design files shown in README.md ("Make a training set") load, and plan without impossible specs."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from longisynth.dataset.design import parse_design
from longisynth.dataset.runner import plan_only

README = Path(__file__).resolve().parents[2] / "README.md"


def _yaml_designs() -> list[dict[str, object]]:
    text = README.read_text()
    start = text.index("## Make a training set")
    section = text[start : text.index("\n## ", start + 1)]
    blocks = re.findall(r"```yaml\n(.*?)```", section, flags=re.S)
    return [d for d in map(yaml.safe_load, blocks) if isinstance(d, dict) and "name" in d]


def test_documented_designs_are_valid_and_plan_cleanly(tmp_path: Path) -> None:
    designs = _yaml_designs()
    assert len(designs) == 2
    for i, data in enumerate(designs):
        folder = tmp_path / str(i)
        folder.mkdir()
        (folder / "s.nii.gz").write_bytes(b"")
        data["inputs"] = {"glob": "*.nii.gz", "modality": data["inputs"]["modality"]}  # type: ignore[index]
        data["cases_per_scan"] = 60  # enough rows to meet every stratum and branch
        rows = plan_only(parse_design(data, "README.md"), folder).rows
        assert rows and all(r["status"] == "planned" for r in rows), [r["error"] for r in rows]
