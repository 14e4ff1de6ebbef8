"""Library warnings that are not the user's business, silenced by every entry point.

Each is named with why: a warning raised inside a library about that library's own use of
another (nothing a user's config or code could change) only buries apa's output.
"""

from __future__ import annotations

import logging
import warnings

LIBRARY_WARNINGS = (
    # PEFT asks transformers by the name transformers deprecated; fixed upstream, not ours to fix.
    (FutureWarning, "`is_gradient_checkpointing` is deprecated"),
)


def ignore_library_warnings() -> None:
    for category, message in LIBRARY_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)


# Loggers that speak up at import time, before any entry point runs: quietened when apa is imported.
LIBRARY_LOGGERS = (
    # bitsandbytes (the quantization extra), imported by PEFT, offers an optional CPU kernel from the hub
    # on every start; its own torch fallback is what runs, and nothing apa or a user does changes it.
    "bitsandbytes.backends.cpu.ops",
)


def quieten_import_loggers() -> None:
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
