"""Files and folders that readers see whole or not at all: written outputs, cached builds (even with
parallel builders) and Trainer checkpoints."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def check_folder(path: Path, what: str) -> None:
    """Refuse a folder setting that names an existing file (it would fail, or be written over, later)."""
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"{what}={path}: a file, not a folder; name a folder (it is created if missing)")


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` in one rename of a finished file beside it: a crash or a full disk
    leaves the old file (or none), never a part of the new one."""
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-writing-")
    staging = Path(name)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        staging.chmod(0o644)  # mkstemp makes it private; an output is an ordinary file
        staging.replace(path)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise


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


def replace_folder(staging: Path, target: Path) -> None:
    """Move the finished folder ``staging`` to ``target`` in one rename, replacing whatever
    ``target`` held (an older, incomplete copy). Files are flushed to disk first, so that after a
    crash ``target`` is the old folder, no folder, or the new one, never a part of one."""
    for path in staging.rglob("*"):
        if path.is_file():
            with path.open("rb") as handle:
                os.fsync(handle.fileno())
    if target.exists():
        discarded = target.with_name(f".{target.name}-replaced-{os.getpid()}")
        target.rename(discarded)
        shutil.rmtree(discarded)
    staging.rename(target)
    directory = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself
    finally:
        os.close(directory)
