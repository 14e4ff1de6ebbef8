"""Run one training job: seed, tracker, model, LoRA adapters.

The entry point (``train.py``) turns the Hydra config into a :class:`TrainJob`, so this module
never imports Hydra and can be driven from a notebook or a test with plain objects.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from peft import LoraConfig
from transformers import set_seed

from apa.logging import WandbLogger
from apa.models import ModelSource, apply_lora, parameter_counts

log = logging.getLogger(__name__)


@dataclass
class TrainJob:
    model: ModelSource
    lora: LoraConfig
    logger: WandbLogger
    output_dir: Path
    seed: int = 42
    config: dict[str, Any] = field(default_factory=dict)  # the resolved config, for the tracker


def run(job: TrainJob) -> float | None:
    """Build the model with its adapters; returns the metric a Hydra sweeper optimises.

    The objectives and the trainer are not part of the project yet: this builds and reports
    the trainable model so configurations can be checked end to end.
    """
    set_seed(job.seed)
    with job.logger.session(job.config, job.output_dir) as tracker:
        model, _processor = job.model.load()
        model = apply_lora(model, job.lora)
        tracker.summarize(parameter_counts(model))
        log.info("model and LoRA adapters ready; no training objective is configured yet")
    return None
