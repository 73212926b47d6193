"""``python -m longisynth.cli``: the same as the ``longisynth`` command."""

import sys

from longisynth.cli import main

sys.exit(main())
