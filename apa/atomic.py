"""Build a cached folder so that readers see it whole or not at all, even with parallel builders."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def build_folder(target: Path) -> Iterator[Path]:
    """Yield an empty staging folder beside ``target``; when the block succeeds it is renamed to
    ``target`` in one step. If another process finished ``target`` first, its copy is kept."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}-building-"))
    staging.chmod(0o755)  # mkdtemp makes it private; the result is a shared cache
    try:
        yield staging
        try:
            staging.rename(target)
        except OSError:
            if not target.is_dir():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
