"""Human-readable summary of a bundle's metadata (``longisynth inspect``)."""

from __future__ import annotations

from typing import Any


def format_summary(meta: dict[str, Any]) -> str:
    """A plain-text table of timepoints and checks."""
    spec = meta.get("spec", {})
    kind = spec.get("nodule_type") or (f"{spec.get('grade')} grade" if spec.get("grade") else "")
    lines = [
        f"longisynth bundle (format {meta.get('format_version')}) · {spec.get('family')} · {kind} · "
        f"law {spec.get('growth', {}).get('law')} · seed {meta.get('seed')}",
        f"prompt: {meta.get('prompt') or '(none)'}",
        "inputs: "
        + ", ".join(
            f"{f['contrast']}={f['name']} {'x'.join(map(str, f['shape']))} {f['orientation']} {f['dtype']}"
            for f in meta.get("input", {}).get("files", [])
        ),
        "",
        f"{'tp':>3} {'days':>8} {'volume mm³':>12} {'diameter mm':>12}  centroid (RAS mm)",
    ]
    for tp in meta.get("timepoints", []):
        c = ", ".join(f"{v:.1f}" for v in tp["centroid_mm"])
        lines.append(
            f"{tp['index']:>3} {tp['days']:>8g} {tp['lesion_volume_mm3']:>12.1f} "
            f"{tp['longest_diameter_mm']:>12.2f}  ({c})"
        )
    lines += ["", f"{'check':<42} {'tp':>3} {'value':>12} {'limit':>12}  result"]
    for chk in meta.get("checks", []):
        tp = "" if chk.get("timepoint") is None else str(chk["timepoint"])
        verdict = "pass" if chk["passed"] else ("FAIL" if chk["hard"] else "warn")
        lines.append(f"{chk['name']:<42} {tp:>3} {chk['value']!s:>12} {chk['limit']:>12}  {verdict}")
    for note in meta.get("notes", []):
        lines.append(f"note: {note}")
    if meta.get("unparsed_words"):
        lines.append("prompt words not understood: " + ", ".join(meta["unparsed_words"]))
    return "\n".join(lines)
