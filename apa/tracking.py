"""Experiment tracking with Weights & Biases; the only module that imports wandb.

``conf/logger/wandb.yaml`` names the project, group, tags and run name, so the runs of one sweep
group together; ``logger=none`` sets ``mode: disabled``. Tracking must never cost a run: when W&B
cannot start (no API key, no network), the run falls back to offline mode, then to no tracking,
with a warning that says why. W&B's own wait for its server (``init_timeout``, 90 s by default,
about 95 s in all) is bounded by ``logger.init_timeout``. wandb is imported when a run starts, so
a job that does not track (``logger=none``) never loads it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

MODES = ("online", "offline", "disabled")
TABLE_ROWS = 10_000  # W&B logs at most this many rows of a table; a longer one would be cut


@dataclass
class WandbLogger:
    """One W&B run per training or evaluation job.

    ``mode`` None defers to the ``WANDB_MODE`` environment variable (W&B's own default: online).
    ``init_timeout``: seconds W&B may wait for its server before the run goes on offline.
    """

    project: str = "apa"
    entity: str | None = None
    group: str | None = None
    name: str | None = None
    tags: list[str] = field(default_factory=list)
    mode: str | None = None
    init_timeout: float = 20.0
    run: Any = field(default=None, init=False, repr=False)
    location: str | None = field(default=None, init=False)  # the run's page, or its offline folder

    def __post_init__(self) -> None:
        if self.mode is not None and self.mode not in MODES:
            raise ValueError(f"logger.mode={self.mode!r} is not one of {', '.join(MODES)} or null")
        timeout = self.init_timeout
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise ValueError(f"logger.init_timeout={self.init_timeout!r}: expected a positive number of seconds")

    @property
    def enabled(self) -> bool:
        return self.mode != "disabled"

    @staticmethod
    def is_main_process() -> bool:
        """Only the first process of a multi-process run tracks (torchrun and accelerate set RANK)."""
        return int(os.environ.get("RANK", "0")) == 0

    @property
    def report_to(self) -> list[str]:
        """The value for ``transformers.TrainingArguments.report_to``."""
        return ["wandb"] if self.enabled else []

    def start(self, config: Mapping[str, Any], run_dir: str | Path) -> None:
        """Open the run (``run_dir/wandb`` holds its files), falling back as the module says."""
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        if not self.enabled:
            return
        import wandb

        settings = dict(
            project=self.project,
            entity=self.entity,
            group=self.group,
            name=self.name,
            tags=list(self.tags),
            config=dict(config),
            dir=str(run_dir),
            settings=wandb.Settings(init_timeout=self.init_timeout, silent=True),  # apa says where the run is
        )
        attempts = list(dict.fromkeys([self.mode, "offline"])) if self.enabled and self.is_main_process() else []
        for mode in attempts:
            if mode != "offline":
                log.info("starting W&B; waiting at most logger.init_timeout=%g s for its server", self.init_timeout)
            try:
                self.run = wandb.init(mode=mode, **settings)
            except Exception as error:  # wandb raises many types; none may end the job
                log.warning(
                    "W&B could not start in mode %s (waited at most logger.init_timeout=%g s): %s",
                    mode or "default",
                    self.init_timeout,
                    error,
                )
                continue
            self.location = self._offline_folder() if self.run.offline else self.run.url  # url warns when offline
            log.info("W&B run: %s", self.location)
            return
        self.run = wandb.init(mode="disabled", **settings)

    @contextmanager
    def session(self, config: Mapping[str, Any], run_dir: str | Path) -> Iterator[WandbLogger]:
        """``start`` ... ``finish``, with a failed job's run marked failed and always closed."""
        self.start(config, run_dir)
        exit_code = 1
        try:
            yield self
            exit_code = 0
        finally:
            self.finish(exit_code)

    def _offline_folder(self) -> str | None:
        folder = getattr(self.run, "dir", None)
        return f"{Path(folder).parent} (offline; upload it with `wandb sync {Path(folder).parent}`)" if folder else None

    def log(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        if self.run is not None:
            self.run.log(dict(metrics), step=step)

    def summarize(self, metrics: Mapping[str, Any]) -> None:
        """Record final values (shown in the W&B runs table, compared across a sweep)."""
        if self.run is not None:
            self.run.summary.update(dict(metrics))

    def log_table(self, name: str, columns: list[str], rows: list[list[Any]]) -> None:
        """A table, whole: one over W&B's :data:`TABLE_ROWS` rows is logged in parts
        (``name/part1``, ...) with a warning that says so, never cut."""
        if self.run is None or not self.enabled:
            return
        import wandb

        parts = [rows[start : start + TABLE_ROWS] for start in range(0, len(rows), TABLE_ROWS)] or [[]]
        if len(parts) == 1:
            self.run.log({name: wandb.Table(columns=columns, data=rows)})
            return
        log.warning(
            "W&B tables hold at most %d rows: %s (%d rows) is logged as %s/part1 ... part%d",
            TABLE_ROWS, name, len(rows), name, len(parts),
        )  # fmt: skip
        self.run.log({f"{name}/part{i}": wandb.Table(columns=columns, data=part) for i, part in enumerate(parts, 1)})

    def log_artifact(self, name: str, kind: str, paths: list[Path]) -> None:
        """Files and folders (a run's predictions, metrics, adapter) as one W&B artifact."""
        if self.run is None or not self.enabled:
            return
        import wandb

        artifact = wandb.Artifact(name, type=kind)
        for path in paths:
            if path.is_dir():
                artifact.add_dir(str(path), name=path.name)
            elif path.is_file():
                artifact.add_file(str(path))
        self.run.log_artifact(artifact)

    def log_images(self, images: Mapping[str, str | Path]) -> None:
        """Image files (plots), by name."""
        if self.run is not None and self.enabled:
            import wandb

            self.run.log({name: wandb.Image(str(path)) for name, path in images.items()})

    def finish(self, exit_code: int = 0) -> None:
        if self.run is not None:
            self.run.finish(exit_code=exit_code)
            self.run = None
