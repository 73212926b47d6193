"""Free-text prompt → partial :class:`~longisynth.spec.LesionSpec` (see :mod:`.parser`)."""

from longisynth.spec.prompt.parser import (
    MAX_PROMPT_CHARS,
    ParsedPrompt,
    normalise,
    parse_prompt,
    read_prompt,
    spec_from_prompt,
)

__all__ = ["MAX_PROMPT_CHARS", "ParsedPrompt", "normalise", "parse_prompt", "read_prompt", "spec_from_prompt"]
