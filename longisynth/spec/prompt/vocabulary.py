"""The prompt's vocabulary: every word the rules understand on its own, and the closest of them
(and the closest archetypes) to a word they do not (for the "not understood" error)."""

from __future__ import annotations

import difflib
import re
from functools import lru_cache
from typing import TYPE_CHECKING

from longisynth.errors import LongisynthError
from longisynth.spec.prompt.rules import RULES

if TYPE_CHECKING:
    from longisynth.archetypes import ArchetypeRegistry


@lru_cache(maxsize=1)
def known_words() -> tuple[str, ...]:
    """Words the parser places on their own (each checked by parsing it: a word the rules only
    understand inside a phrase, or one that is refused, is left out)."""
    from longisynth.archetypes import builtin_registry
    from longisynth.spec.prompt.parser import parse_prompt

    candidates: set[str] = set()
    for rule in RULES:
        source = re.sub(r"\\[a-zA-Z]", " ", rule.pattern.pattern)  # \b, \s, \w are not letters
        for word in re.findall(r"[a-z]{3,}", source):
            candidates.update((word, word.removesuffix("s")))
    for phrase, _ in builtin_registry().aliases():
        candidates.update(w for w in phrase.split() if len(w) >= 3)
    out = []
    for word in sorted(candidates):
        try:
            parsed = parse_prompt(word)
        except LongisynthError:
            continue
        if not parsed.unknown_words and (parsed.matched or parsed.archetype):
            out.append(word)
    return tuple(out)


def suggestions(unknown: list[str], archetypes: ArchetypeRegistry | None = None, n: int = 3) -> str:
    """`` (closest known words: ...; closest archetypes: ...)`` for the unknown words, or an empty
    string when nothing is close (a typo of a known word or of an archetype's name or alias)."""
    from longisynth.archetypes import builtin_registry

    registry = archetypes or builtin_registry()
    vocab = list(known_words())
    alias_words: dict[str, set[str]] = {}
    for phrase, name in registry.aliases():
        for word in phrase.split():
            if len(word) >= 3:
                alias_words.setdefault(word, set()).add(name)
    words: list[str] = []
    names: list[str] = []
    for w in unknown:
        for close in difflib.get_close_matches(w, vocab + list(alias_words), n=n, cutoff=0.85):
            if close in alias_words:
                names.extend(sorted(alias_words[close]))
            if close in vocab and close not in words:
                words.append(close)
    parts = []
    if words:
        parts.append("closest known words: " + ", ".join(f'"{w}"' for w in words[: 2 * n]))
    names = list(dict.fromkeys(names))
    if names:
        parts.append("closest archetypes: " + ", ".join(names[: 2 * n]))
    return " (" + "; ".join(parts) + ")" if parts else ""
