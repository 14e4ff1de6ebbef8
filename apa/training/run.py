"""Run one training job: check the configuration, build the model with its adapters, train, save.

The entry point (``train.py``) turns the Hydra config into a :class:`TrainJob`, so this module
never imports Hydra and can be driven from a notebook or a test with plain objects.
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import yaml
from accelerate import PartialState
from accelerate.utils import broadcast_object_list
from peft import LoraConfig, PeftModel
from transformers import PreTrainedModel, ProcessorMixin, TrainerCallback, set_seed

from apa.atomic import check_folder
from apa.data.corpus import DEV, Corpus, check_limit
from apa.data.features import FeatureCache, FeatureTable
from apa.data.records import Utterance
from apa.distributed import join_slurm_tasks
from apa.evaluation import Detection, Report, announce, decode_and_score, evaluate
from apa.evaluation.decoders import Decoder, SlotDecoder, check_slot_mode, default_decoder
from apa.evaluation.report import write_json
from apa.evaluation.shares import decode_shares
from apa.models import ModelSource, adapter_config, apply_lora, parameter_counts
from apa.models.audio_cache import TowerCache
from apa.models.batching import Collator
from apa.models.encoding import PromptEncoder
from apa.models.heads import save_head_spec
from apa.models.score_tokens import add_score_tokens
from apa.objectives import Objective
from apa.prompts import Prompt
from apa.runs import ADAPTER_DIR, CHECKPOINT_DIR, DEV_HISTORY, RUN_CONFIG, UNTRAINED_DIR, check_new_run_folder
from apa.tracking import WandbLogger
from apa.training.checkpoints import checkpoint_to_resume
from apa.training.checks import check_settings
from apa.training.examples import (
    ExampleSet,
    NegativesOfTheEpoch,
    TrainingCollator,
    build_examples,
    slot_label_entropy,
)
from apa.training.selection import (
    SELECTION,
    check_optimized_metric,
    check_selection,
    dev_history,
    selection_score,
    value_at_kept_checkpoint,
)
from apa.training.trainer import Scorer, ScoringTrainer, TrainerSettings

log = logging.getLogger(__name__)
DDP_TIMEOUT = 1800  # seconds: transformers' default for trainer.arguments.ddp_timeout


@dataclass
class TrainJob:
    model: ModelSource
    data: Corpus
    prompt: Prompt
    objective: Objective
    lora: LoraConfig
    trainer: TrainerSettings
    logger: WandbLogger
    output_dir: Path
    cache_dir: Path
    seed: int = 42
    limit: int | None = None  # use the first N utterances of each split (smoke runs)
    cache_audio_tower: bool = True  # compute the frozen tower's outputs once, reuse them every epoch and run
    test_split: str | None = "test"  # decoded and scored after training (None: skip)
    score_untrained: bool = False  # decode the test split before training too: the summary's baseline
    decoder: Decoder | None = None  # None: the objective's own (apa.evaluation.decoders.default_decoder)
    resamples: int = 1000
    detection: Detection = field(default_factory=Detection)  # mispronounced phones; no threshold: the dev split chooses
    optimized_metric: str = "dev/selection"  # what a sweeper receives: a dev metric, never the test split's
    dev_selection: tuple[str, ...] = ("sentence/total/pcc",)  # dev metrics averaged into dev/selection
    config: dict[str, Any] = field(default_factory=dict)  # the resolved config, for the tracker
    callbacks: list[TrainerCallback] = field(default_factory=list)

    def __post_init__(self) -> None:
        check_limit(self.limit)
        check_folder(self.output_dir, "the run folder (hydra.run.dir)")
        check_folder(self.cache_dir, "paths.cache_dir ($APA_CACHE)")


def adapter_fingerprint(model: PeftModel) -> str:
    digest = hashlib.sha256()
    for name, parameter in sorted(model.named_parameters()):
        if parameter.requires_grad:
            digest.update(name.encode() + parameter.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


def split_features(job: TrainJob, processor: ProcessorMixin, split: str) -> tuple[list[Utterance], FeatureTable]:
    """The utterances of ``split`` (the first ``job.limit``) and their features, cached."""
    utterances = job.data.utterances(split)[: job.limit]
    return utterances, FeatureCache.under(job.cache_dir).load(utterances, processor.feature_extractor)


def training_set(job: TrainJob, model: PeftModel, processor: ProcessorMixin) -> ExampleSet:
    utterances, features = split_features(job, processor, "train")
    encoder = PromptEncoder(processor.tokenizer, job.prompt, masked_slots=job.objective.masked_slots)
    pairs, draws = job.objective.needs_pairs, negatives_per_example(job)
    examples = build_examples(utterances, features, encoder, pairs=pairs, seed=job.seed, negatives_per_example=draws)
    log.info("%d training examples from %d utterances", len(examples), len(utterances))
    audio = TowerCache.under(job.cache_dir).load(model, features) if job.cache_audio_tower else features
    return ExampleSet(examples, audio)


def negatives_per_example(job: TrainJob) -> int:
    """One simulated negative an example, or one for each epoch when the objective redraws them."""
    if not job.objective.redraw_negatives:
        return 1
    return max(1, math.ceil(job.trainer.arguments.get("num_train_epochs", 3)))


def adapted_model(job: TrainJob, model: PreTrainedModel, processor: ProcessorMixin) -> PeftModel:
    """``model`` with the prompt's score tokens, the objective's modules (a head) and the LoRA adapters."""
    score_ids = add_score_tokens(model, processor.tokenizer, job.prompt.vocabulary)
    extra_modules = [*job.model.modules_to_save, *job.objective.setup(model, processor.tokenizer, job.prompt)]
    return apply_lora(model, adapter_config(job.lora, model, score_ids, extra_modules))


def training_collator(job: TrainJob, processor: ProcessorMixin) -> TrainingCollator:
    return TrainingCollator(Collator(processor.tokenizer.pad_token_id, job.prompt.aspect_names))


def job_decoder(job: TrainJob) -> Decoder:
    """The job's decoder, by default its objective's own; a slot decoder must read the slots as the
    objective trains them."""
    decoder = job.decoder or default_decoder(job.objective)
    if isinstance(decoder, SlotDecoder):
        check_slot_mode(decoder.masked_slots, job.objective)
    return decoder


def dev_scores(job: TrainJob, processor: ProcessorMixin):
    """What the Trainer's evaluation reports: the dev split decoded and scored (no intervals), with
    the mean of ``job.dev_selection`` as ``selection``; its features read once for every evaluation."""
    utterances, features = split_features(job, processor, DEV)
    decoder, references = job_decoder(job), {u.id: u.scores for u in utterances}

    def scores(model: PeftModel) -> dict[str, float | None]:
        decoded = decode_shares(decoder, model, processor, job.prompt, utterances, features)  # a share each
        predictions = {uid: p.scores for uid, p in decoded.items()}
        detection = job.detection.chosen_on(predictions, references)  # its F1 at the threshold it chooses
        metrics = evaluate(predictions, references, resamples=0, aspects=job.prompt.asked, detection=detection).metrics
        return metrics | {SELECTION: selection_score(metrics, job.dev_selection)}

    return utterances, scores


def check_dev_split(job: TrainJob) -> bool:
    """Whether the Trainer evaluates a dev split; refuses evaluation without one (before any model loads)."""
    evaluates = job.trainer.arguments.get("eval_strategy", "no") != "no"
    has_dev = getattr(job.data, "has_dev", False)
    if evaluates and not has_dev:
        raise ValueError(
            "trainer.arguments.eval_strategy is set but the corpus has no dev split: "
            "set data.dev_speakers (e.g. 0.1 of the training speakers), or eval_strategy=no"
        )
    if has_dev and not evaluates:
        log.warning("data.dev_speakers is set but trainer.arguments.eval_strategy=no: the dev split is not used")
    return evaluates


def evaluate_test_split(
    job: TrainJob,
    model: PeftModel,
    processor: ProcessorMixin,
    output_dir: Path,
    tracker,
    resamples: int | None = None,
    detection: Detection | None = None,
) -> Report | None:
    """The test split decoded and scored into ``output_dir``, as ``evaluate.py checkpoint=`` does it
    (``resamples``: for the intervals, default the job's; no tracker: nothing sent; ``detection``:
    default the job's)."""
    utterances, features = split_features(job, processor, job.test_split)
    resamples = job.resamples if resamples is None else resamples
    return decode_and_score(
        job_decoder(job),
        model,
        processor,
        job.prompt,
        utterances,
        features,
        output_dir,
        tracker,
        resamples,
        job.seed,
        detection=detection or job.detection,
    )


DEV_THRESHOLD = "dev/phone/accuracy/detection_threshold"


def kept_detection(job: TrainJob, state) -> Detection:
    """The job's detection with, when it gives no threshold, the one the dev split chose at the kept
    checkpoint (none without a dev split or phone scores: AUC only)."""
    if job.detection.threshold is not None:
        return job.detection
    threshold = value_at_kept_checkpoint(state.log_history, DEV_THRESHOLD, state.best_global_step)
    if threshold is None or math.isnan(threshold):
        return job.detection
    log.info("mispronounced phones are flagged below %.3f, the F1-best threshold on the dev split", threshold)
    return job.detection.with_threshold(threshold)


def score_untrained(job: TrainJob, model: PeftModel, processor: ProcessorMixin, run_dir: Path) -> Report | None:
    """The test split decoded by the model as training starts (LoRA's update is zero; score tokens
    and heads as initialised), into ``untrained/`` of the run folder, not sent to the tracker."""
    return evaluate_test_split(job, model, processor, run_dir / UNTRAINED_DIR, tracker=None, resamples=0)


def next_steps(run_dir: Path) -> list[str]:
    return [
        f"python evaluate.py checkpoint={run_dir}   # score it again, on any split or corpus",
        f'apa score RECORDING.wav --text "the words said" --checkpoint {run_dir}   # score your own recording',
    ]


def sweep_value(job: TrainJob, state, training_loss: float) -> float:
    """What a Hydra sweeper receives: ``job.optimized_metric`` on the dev split at the kept
    checkpoint (NaN, a failed trial, where it is undefined); without a dev split, the final training
    loss."""
    value = value_at_kept_checkpoint(state.log_history, job.optimized_metric, state.best_global_step)
    if value is None:
        return training_loss
    if math.isnan(value):
        log.warning("%s is undefined at the kept checkpoint; a sweeper receives NaN", job.optimized_metric)
    return value


def run(job: TrainJob) -> float | None:
    """Train, save the adapter, evaluate the test split; returns what a Hydra sweeper optimises
    (:func:`sweep_value`: a dev metric, never the test split's)."""
    job.objective.check(job.prompt)  # a bad combination fails before any model is loaded
    check_selection(job.dev_selection, job.prompt)
    check_optimized_metric(job.optimized_metric, job.prompt)
    check_settings(job.lora, job.trainer.arguments)
    config = {**job.config, "decoding": job_decoder(job).config()}  # how the run is read, resolved
    evaluates_dev = check_dev_split(job)
    set_seed(job.seed)
    join_slurm_tasks()  # before the process group forms: SLURM's tasks become its ranks
    # Joins torchrun's / accelerate's / SLURM's processes, each waiting at most ddp_timeout for the others.
    timeout = timedelta(seconds=job.trainer.arguments.get("ddp_timeout", DDP_TIMEOUT))
    processes = PartialState(cpu=not torch.cuda.is_available(), timeout=timeout)
    (run_dir,) = broadcast_object_list([str(job.output_dir)])  # every process writes to rank 0's run folder
    run_dir = Path(run_dir)
    if not job.trainer.resume:  # before any model loads
        check_new_run_folder(run_dir)
    resume_from = checkpoint_to_resume(job.trainer.resume, run_dir / CHECKPOINT_DIR)
    with job.logger.session(config, run_dir) as tracker:
        with processes.main_process_first():  # one process downloads or builds the model, then the others load it
            model, processor = job.model.load()
        peft_model = adapted_model(job, model, processor)
        tracker.summarize(parameter_counts(peft_model))
        args = job.trainer.training_arguments(
            str(run_dir / CHECKPOINT_DIR), job.seed, job.logger.report_to, bf16=model.dtype == torch.bfloat16
        )
        with processes.main_process_first():  # rank 0 builds the caches, the others then read them
            dataset = training_set(job, peft_model, processor)
        entropy = slot_label_entropy(dataset.examples)  # what train/slot_ce must go below
        log.info("slot label entropy %.3f nats: the cross-entropy of an answer that ignores the audio", entropy)
        tracker.summarize({"train/slot_label_entropy": entropy})
        dev, scores = dev_scores(job, processor) if evaluates_dev else (None, None)
        trainer = ScoringTrainer(
            model=Scorer(peft_model, job.objective),
            args=args,
            train_dataset=dataset,
            eval_dataset=dev,
            data_collator=training_collator(job, processor),
            processing_class=processor,
            lengths=dataset.lengths,
            dev_scores=scores,
            callbacks=[*job.callbacks, *([NegativesOfTheEpoch(dataset)] if job.objective.redraw_negatives else [])],
        )
        untrained = None
        if job.score_untrained and job.test_split and not resume_from:  # every process decodes a share
            untrained = score_untrained(job, peft_model, processor, run_dir)
        result = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
        if trainer.state.best_model_checkpoint:
            best = {"dev/best_metric": trainer.state.best_metric, "dev/best_step": trainer.state.best_global_step}
            log.info("kept %s, the best on the dev split (%s)", trainer.state.best_model_checkpoint, best)
            tracker.summarize(best)
        elif args.load_best_model_at_end:
            log.warning(
                "no dev evaluation gave %s a value (a constant or unparseable prediction leaves a correlation "
                "undefined): the last step's adapter is kept",
                args.metric_for_best_model,
            )
        trainer.save_model(str(run_dir / ADAPTER_DIR))
        log.info("adapter fingerprint %s (process %d)", adapter_fingerprint(peft_model), args.process_index)
        tracker.summarize({"train/final_loss": result.training_loss})
        outcome, report = sweep_value(job, trainer.state, result.training_loss), None
        detection = kept_detection(job, trainer.state)
        config = {**config, "detection": detection.config()}  # evaluate.py checkpoint= and apa score read it
        if processes.is_main_process:
            save_head_spec(peft_model, run_dir / ADAPTER_DIR)
            (run_dir / RUN_CONFIG).write_text(yaml.safe_dump(config, sort_keys=False))
            if evaluates_dev:
                history = dev_history(
                    trainer.state.log_history, trainer.state.best_global_step, args.metric_for_best_model
                )
                write_json(run_dir / DEV_HISTORY, history)
            tracker.log_artifact("trained-adapter", "model", [run_dir / ADAPTER_DIR, run_dir / RUN_CONFIG])
        if job.test_split:  # every process decodes a share; the main one writes and scores (never returned)
            report = evaluate_test_split(job, peft_model, processor, run_dir, tracker, detection=detection)
        processes.wait_for_everyone()
    if report is not None:
        announce(report, run_dir, job.logger, untrained, next_steps(run_dir))
    return outcome
