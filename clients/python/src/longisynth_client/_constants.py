"""Retry and timeout defaults, in one place."""

from __future__ import annotations

import httpx

DEFAULT_BASE_URL = "http://127.0.0.1:3000"
"""Used when neither ``base_url`` nor ``LONGISYNTH_BASE_URL`` is given."""

DEFAULT_MAX_RETRIES = 2
"""Retries after the first attempt (so at most 3 attempts)."""

INITIAL_RETRY_DELAY = 0.5
"""Seconds before the first retry; doubles on each further retry."""

MAX_RETRY_DELAY = 8.0
"""Cap of the exponential backoff, seconds."""

RETRY_JITTER = 0.25
"""The backoff delay is multiplied by a random factor in ``[1 - RETRY_JITTER, 1]``."""

MAX_RETRY_AFTER = 60.0
"""A server's ``Retry-After`` is honoured up to this many seconds."""

RETRY_STATUS_CODES = frozenset({429, 503})
"""Statuses that are retried (the server asks to come back later); no other 4xx is retried."""

DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 600.0
DEFAULT_TIMEOUT = httpx.Timeout(DEFAULT_READ_TIMEOUT, connect=DEFAULT_CONNECT_TIMEOUT)
"""Connect 10 s; read, write and pool 600 s (a generation can take minutes)."""

UPLOAD_CHUNK = 1 << 20
"""Bytes per chunk of a streamed upload (progress granularity)."""
