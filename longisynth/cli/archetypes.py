"""``longisynth archetypes list | show NAME``: the progression archetypes (:mod:`longisynth.archetypes`)."""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path
from typing import Any

from longisynth.cli.errors import EXIT_OK, guarded


def add_archetype_commands(sub: Any) -> None:
    """Register ``archetypes list | show`` on an ``argparse`` sub-parsers object."""
    arc = sub.add_parser("archetypes", help="list and show the expert-defined progression archetypes")
    cmds = arc.add_subparsers(dest="archetypes_command", required=True)
    ls = cmds.add_parser("list", help="one line per archetype")
    ls.add_argument("--family", choices=("lung_nodule", "glioma"), default=None)
    sh = cmds.add_parser("show", help="an archetype: description, references, fixed and sampled fields")
    sh.add_argument("name", help="archetype name or alias (e.g. glioblastoma, gbm)")
    sh.add_argument("--yaml", action="store_true", help="print it as YAML (a starting point for your own)")
    for p in (ls, sh):
        p.add_argument(
            "--archetypes",
            type=Path,
            default=None,
            help="folder of your own archetypes (added to the shipped ones)",
        )


def run_archetypes_command(args: argparse.Namespace) -> int:
    """Run ``archetypes list | show``; errors are one line and exit 2."""
    if args.archetypes_command == "list":
        return guarded(lambda: _list(args.archetypes, args.family))
    return guarded(lambda: _show(args.archetypes, args.name, args.yaml))


def _list(folder: Path | None, family: str | None) -> int:
    from longisynth.archetypes import load_registry

    reg = load_registry(folder)
    rows = [reg.get(n) for n in reg.names()]
    rows = [a for a in rows if family is None or a.family.value == family]
    width = max((len(a.name) for a in rows), default=4)
    for a in sorted(rows, key=lambda a: (a.family.value, a.name)):
        origin = "" if reg.origin(a.name) == "builtin" else f"  [{reg.origin(a.name)}]"
        print(f"{a.name:<{width}}  v{a.version}  {a.family.value:<11}  {a.title}{origin}")
    return EXIT_OK


def _show(folder: Path | None, name: str, as_yaml: bool) -> int:
    from longisynth.archetypes import load_registry
    from longisynth.archetypes.model import describe_choice

    reg = load_registry(folder)
    a = reg.get(name)
    if as_yaml:
        import yaml

        data = a.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
        data = {"name": a.name, "version": a.version, "family": a.family.value, **data}
        print(yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100).rstrip())
        return EXIT_OK
    lines = [
        f"{a.name} (version {a.version}, {a.family.value}, {a.review}; {reg.origin(a.name)})",
        a.title,
        "",
        *textwrap.wrap(" ".join(a.description.split()), 96),
        "",
        "Prompt words: " + ", ".join(f'"{x}"' for x in dict.fromkeys([a.name.replace("_", " "), *a.aliases])),
        "",
        "Fixed:",
        *(f"  {k} = {v}" for k, v in a.fixed_fields().items()),
        "",
        "Drawn per study (fields the request leaves unset):",
        *(f"  {k}: {describe_choice(d)}" for k, d in a.sample.items()),
        "",
        "References:",
        *(f"  - {r}" for r in a.references),
    ]
    print("\n".join(lines))
    return EXIT_OK
