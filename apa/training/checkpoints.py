"""Trainer checkpoints that are complete or absent, and resuming from the newest complete one.

transformers' ``Trainer`` writes ``checkpoint-N`` in place, file after file, so a run interrupted
while it saves leaves a half-written folder that ``resume_from_checkpoint=True`` then picks (it
takes the highest N) and fails on. (Trainer 4.36 staged checkpoints in ``tmp-checkpoint-N`` and
renamed them; 4.37 reverted that after every process renamed on its own on multi-node runs.)
Here the Trainer writes each checkpoint into a hidden staging folder; once every process has
written its part, the main process renames it to ``checkpoint-N`` in one step
(:func:`apa.atomic.replace_folder`) and only then deletes older checkpoints. Resuming takes the
newest checkpoint that holds everything a resume reads, and names any it skips.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from transformers.trainer import OPTIMIZER_NAME, SCHEDULER_NAME, TRAINER_STATE_NAME
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, rotate_checkpoints, sort_checkpoints

from apa.atomic import replace_folder
from apa.runs import ADAPTER_CONFIG, ADAPTER_WEIGHTS, unreadable_file

log = logging.getLogger(__name__)

STAGING_SUFFIX = ".saving"  # .checkpoint-N.saving/checkpoint-N while the Trainer writes it
# What resuming reads; written by the Trainer in this order, the state last.
CHECKPOINT_FILES = (ADAPTER_CONFIG, ADAPTER_WEIGHTS, OPTIMIZER_NAME, SCHEDULER_NAME, TRAINER_STATE_NAME)


class CheckpointError(RuntimeError):
    """No checkpoint to resume from, or one that cannot be read; the message names the file."""


def incomplete(checkpoint: Path) -> str | None:
    """Why ``checkpoint`` cannot be resumed from (the first unreadable file), or None."""
    rng_states = sorted(checkpoint.glob("rng_state*.pth"))
    files = [checkpoint / name for name in CHECKPOINT_FILES] + (rng_states or [checkpoint / "rng_state.pth"])
    return next((why for why in map(unreadable_file, files) if why), None)


def newest_complete_checkpoint(folder: Path) -> Path:
    """The newest checkpoint in ``folder`` that a resume can read whole; the newer ones it skips
    are named in the log, and the error says why when there is none."""
    if not folder.is_dir():
        raise CheckpointError(
            f"trainer.resume=true but {folder} does not exist: nothing to resume "
            "(pass the interrupted run's folder as hydra.run.dir=<run>)"
        )
    # a staging folder is cleared by the next save, so any left is newer than every checkpoint
    staged = sorted(p.name for p in folder.glob(f".{PREFIX_CHECKPOINT_DIR}-*{STAGING_SUFFIX}"))
    skipped = [f"{name} (a save that was interrupted)" for name in staged]
    for checkpoint in map(Path, reversed(sort_checkpoints(str(folder)))):
        why = incomplete(checkpoint)
        if why is None:
            if skipped:
                log.warning("resuming from %s; skipped the newer, incomplete %s", checkpoint, "; ".join(skipped))
            else:
                log.info("resuming from %s", checkpoint)
            return checkpoint
        skipped.append(f"{checkpoint.name} ({why})")
    found = "; ".join(skipped) or "nothing"
    raise CheckpointError(f"trainer.resume=true but {folder} holds no complete checkpoint (found: {found})")


def checkpoint_to_resume(resume: bool, folder: Path) -> Path | None:
    """With ``trainer.resume``, the checkpoint to continue from (else None), found before any model loads."""
    return newest_complete_checkpoint(folder) if resume else None


@contextmanager
def loading(checkpoint: str, files: str) -> Iterator[None]:
    """Re-raise any failure to load ``files`` from ``checkpoint`` naming them."""
    try:
        yield
    except Exception as error:
        raise CheckpointError(f"{checkpoint}: cannot load {files} ({type(error).__name__}: {error})") from error


class AtomicCheckpoints:
    """``transformers.Trainer`` mixin: every checkpoint is written aside and renamed into place
    (see the module's docstring), and a failed load names the checkpoint file."""

    _staging: Path | None = None  # where the Trainer writes while it saves

    def _get_output_dir(self, trial) -> str:
        return str(self._staging) if self._staging is not None else super()._get_output_dir(trial)

    def _save_checkpoint(self, model, trial) -> None:
        run_dir = Path(self._get_output_dir(trial))
        final = run_dir / f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
        staging = run_dir / f".{final.name}{STAGING_SUFFIX}"
        if self.args.should_save:
            for leftover in run_dir.glob(f".{PREFIX_CHECKPOINT_DIR}-*{STAGING_SUFFIX}"):  # saves killed before
                shutil.rmtree(leftover)
        self.accelerator.wait_for_everyone()
        self._staging = staging
        try:
            super()._save_checkpoint(model, trial)  # writes staging/checkpoint-N, rotates nothing there
        except BaseException:
            if self.args.should_save:
                shutil.rmtree(staging, ignore_errors=True)
            raise
        finally:
            self._staging = None
        self.accelerator.wait_for_everyone()  # every process has written its RNG state
        if self.args.should_save:
            self._publish(staging / final.name, final)
            staging.rmdir()
            rotate_checkpoints(
                str(run_dir), self.args.save_total_limit, self.state.best_model_checkpoint, use_mtime=True
            )
        self.accelerator.wait_for_everyone()

    def _publish(self, written: Path, final: Path) -> None:
        """Rename the written checkpoint into place; a best-checkpoint path the Trainer recorded
        inside the staging folder is pointed at the final one first."""
        if self.state.best_model_checkpoint == str(written):
            self.state.best_model_checkpoint = str(final)
            self.state.save_to_json(str(written / TRAINER_STATE_NAME))
        replace_folder(written, final)

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
        with loading(resume_from_checkpoint, f"the adapter ({ADAPTER_CONFIG}, {ADAPTER_WEIGHTS})"):
            super()._load_from_checkpoint(resume_from_checkpoint, model)

    def _load_optimizer_and_scheduler(self, checkpoint: str | None) -> None:
        with loading(str(checkpoint), f"{OPTIMIZER_NAME} or {SCHEDULER_NAME}"):
            super()._load_optimizer_and_scheduler(checkpoint)

    def _load_rng_state(self, checkpoint: str | None) -> None:
        with loading(str(checkpoint), "rng_state*.pth"):
            super()._load_rng_state(checkpoint)
