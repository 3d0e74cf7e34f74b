"""How a command ends: its exit code, and a user mistake said as lines on stderr."""

from __future__ import annotations

import sys

EXIT_OK, EXIT_FATAL, EXIT_CONFIG = 0, 1, 2


def say_config_error(message: str) -> None:
    for line in message.splitlines() or [message]:
        print(f"metric-reader: configuration error: {line}", file=sys.stderr, flush=True)
