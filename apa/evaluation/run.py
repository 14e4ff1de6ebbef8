"""Run one evaluation job: seed, tracker, model.

The entry point (``evaluate.py``) turns the Hydra config into an :class:`EvaluateJob`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers import set_seed

from apa.logging import WandbLogger
from apa.models import ModelSource, parameter_counts

log = logging.getLogger(__name__)


@dataclass
class EvaluateJob:
    model: ModelSource
    logger: WandbLogger
    output_dir: Path
    seed: int = 42
    config: dict[str, Any] = field(default_factory=dict)


def run(job: EvaluateJob) -> dict[str, float]:
    """Load the model; the metrics it will score come with the evaluator."""
    set_seed(job.seed)
    with job.logger.session(job.config, job.output_dir) as tracker:
        model, _processor = job.model.load()
        counts = parameter_counts(model)
        tracker.summarize(counts)
        log.info("model ready; no predictions or references are configured yet")
    return counts
