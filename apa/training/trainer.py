"""The transformers ``Trainer``, with an objective as its loss.

The objective runs inside the trained module's ``forward`` (:class:`Scorer`), so data-parallel
engines see the whole computation (DDP synchronises what ``forward`` used). Checkpoints hold the
LoRA adapter (with the score-token rows and any head) and the processor, never the base weights.
With a development split, the Trainer's evaluation decodes it and scores it as the test split will be
(not the loss), so that ``load_best_model_at_end`` keeps the checkpoint with the best dev metric.
"""

from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from peft import PeftModel
from torch import nn
from transformers import Trainer, TrainingArguments
from transformers.trainer_pt_utils import LengthGroupedSampler

from apa.evaluation.metrics import SPREADS
from apa.objectives import Objective, ObjectiveOutput
from apa.training.checkpoints import AtomicCheckpoints
from apa.training.selection import DEV_METRICS

log = logging.getLogger(__name__)


class Scorer(nn.Module):
    """The LoRA-wrapped model and its objective as one module: ``forward(**batch)`` is the loss."""

    def __init__(self, model: PeftModel, objective: Objective):
        super().__init__()
        self.model = model
        self.objective = objective
        self.config = model.get_base_model().config

    def forward(self, **batch: torch.Tensor) -> ObjectiveOutput:
        return self.objective(self.model, batch)

    def activation_checkpointing_enable(self, **kwargs) -> None:
        """Recompute the language model's activations in the backward pass (the Trainer calls this)."""
        self.model.get_base_model().activation_checkpointing_enable(**kwargs)


@dataclass
class TrainerSettings:
    """What ``conf/trainer`` instantiates: ``arguments`` go to ``transformers.TrainingArguments``
    as they are (``bf16: null`` means on when the model was loaded in bfloat16)."""

    arguments: dict[str, Any] = field(default_factory=dict)
    resume: bool = False

    def training_arguments(self, output_dir: str, seed: int, report_to: list[str], bf16: bool) -> TrainingArguments:
        arguments = dict(self.arguments)
        if arguments.get("bf16") is None:
            arguments["bf16"] = bf16
        arguments.setdefault("use_cpu", not torch.cuda.is_available())  # CPU processes talk over gloo
        try:
            return TrainingArguments(
                output_dir=output_dir, seed=seed, report_to=report_to, remove_unused_columns=False, **arguments
            )
        except TypeError as error:
            raise TypeError(f"trainer.arguments: {error} (see transformers.TrainingArguments)") from error


class NonFiniteTraining(RuntimeError):
    """The loss or the gradient norm became NaN or infinite: training stops before the weights take it."""


class ScoringTrainer(AtomicCheckpoints, Trainer):
    """``Trainer`` whose loss comes from the :class:`Scorer`; logs every part of the objective
    (averaged between logging steps, and across processes) and the throughput."""

    loss_is_scaled_for_ga = False  # objectives return batch means

    def __init__(
        self,
        *args,
        lengths: list[int] | None = None,
        dev_scores: Callable[[PeftModel], dict[str, float | None]] | None = None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.model_accepts_loss_kwargs = False
        self.lengths = lengths
        self.dev_scores = dev_scores
        self._parts: dict[str, list[torch.Tensor]] = defaultdict(list)
        self._samples = self._tokens = 0
        self._since = time.perf_counter()

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        output = model(**inputs)
        self.stop_unless_finite("loss", output.loss)
        for name, value in output.metrics.items():
            self._parts[name].append(value)
        self._samples += int(inputs["audio_index"].max()) + 1
        self._tokens += int(inputs["attention_mask"].sum())
        return (output.loss, output) if return_outputs else output.loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs and self._parts:
            for name, values in self._parts.items():
                mean = torch.stack(values).mean().to(self.args.device)
                logs[name] = round(self.accelerator.reduce(mean, reduction="mean").item(), 6)
            elapsed = time.perf_counter() - self._since
            world = self.args.world_size
            logs["samples_per_second"] = round(self._samples * world / elapsed, 3)
            logs["tokens_per_second"] = round(self._tokens * world / elapsed, 1)
            self._parts.clear()
            self._samples = self._tokens = 0
            self._since = time.perf_counter()
        super().log(logs, start_time)

    def _get_grad_norm(self, model, grad_norm=None):
        grad_norm = super()._get_grad_norm(model, grad_norm)
        self.stop_unless_finite("gradient norm", torch.as_tensor(grad_norm))  # before the optimizer steps
        return grad_norm

    def stop_unless_finite(self, what: str, value: torch.Tensor) -> None:
        """Stop a run whose ``what`` is NaN or infinite: one such step turns every adapter weight to NaN,
        and a run that saved them would look finished. Its checkpoints (all taken before) are kept."""
        if not torch.isfinite(value.detach()).all():
            raise NonFiniteTraining(
                f"training stopped at step {self.state.global_step + 1}: the {what} is {value.item()} "
                f"(not finite), so no adapter was saved; the checkpoints before it are in {self.args.output_dir} "
                "(continue from the newest with trainer.resume=true, e.g. at a lower learning rate), and the "
                "training data may hold a non-finite sample or label"
            )

    def _get_train_sampler(self, train_dataset=None):
        if self.args.train_sampling_strategy == "group_by_length" and self.lengths is not None:
            return LengthGroupedSampler(
                self.args.train_batch_size * self.args.gradient_accumulation_steps, lengths=self.lengths
            )
        return super()._get_train_sampler(train_dataset)

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval") -> dict[str, float]:
        """The dev split's metrics as ``eval_dev/<granularity>/<aspect>/<metric>`` (undefined: NaN, never
        "best"); select checkpoints with ``metric_for_best_model: dev/sentence/total/pcc``, or
        ``dev/selection`` (the mean of the job's ``dev_selection``)."""
        if self.dev_scores is None:
            return super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)
        with self.accelerator.autocast():  # the training's precision, as the Trainer's own evaluation runs
            scores = self.dev_scores(self.peft_model())
        metrics = {
            f"{metric_key_prefix}_dev/{name}": math.nan if value is None else value
            for name, value in scores.items()
            if name.rsplit("/", 1)[-1] in DEV_METRICS
        }
        self.log(metrics)
        log.info("dev split at step %d: %s", self.state.global_step, self.headline(scores))
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics

    def headline(self, scores: dict[str, float | None]) -> str:
        """The selection metric and the spread of its aspect's predictions, for the training log."""
        name = (self.args.metric_for_best_model or "dev/sentence/total/pcc").removeprefix("dev/")
        aspect = name.rsplit("/", 1)[0]
        value, sd, sd_reference = (scores.get(key) for key in (name, *(f"{aspect}/{s}" for s in SPREADS)))
        headline = f"{name} {'undefined' if value is None else f'{value:.3f}'}"
        return headline if sd is None else f"{headline}, sd of predictions {sd:.2f} (references {sd_reference:.2f})"

    def _load_best_model(self) -> None:
        self._load_from_checkpoint(self.state.best_model_checkpoint)

    def peft_model(self) -> PeftModel:
        return self.accelerator.unwrap_model(self.model).model

    def _save(self, output_dir: str | None = None, state_dict=None) -> None:
        if not self.args.should_save:  # only the main process writes the adapter
            return
        output_dir = output_dir or self.args.output_dir
        self.peft_model().save_pretrained(output_dir)
        if self.processing_class is not None:
            self.processing_class.save_pretrained(output_dir)
        torch.save(self.args, f"{output_dir}/training_args.bin")

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: nn.Module | None = None) -> None:
        super()._load_from_checkpoint(resume_from_checkpoint, model=self.peft_model())
