"""From a composed config to a job: what train.py, evaluate.py, the benchmarks and notebooks build.

The jobs themselves (:class:`apa.training.TrainJob`, :class:`apa.evaluation.EvaluateJob`) are
plain dataclasses; this module, at the edge with the entry points, instantiates a Hydra config
into one. Nothing is loaded here: models, corpora and caches load when the job runs. Building an
evaluation job that only scores a predictions file imports no torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from apa.evaluation import EvaluateJob
from apa.trained_run import TrainedRun

if TYPE_CHECKING:
    from apa.training import TrainJob


def tracker(cfg: DictConfig):
    """The W&B logger; without a group set, a multirun's jobs share one named after its folder."""
    logger = instantiate(cfg.logger)
    if logger.group is None:
        hydra = HydraConfig.get()
        multirun = hydra.mode == RunMode.MULTIRUN
        logger.group = f"{cfg.task_name}-{Path(hydra.sweep.dir).name}" if multirun else cfg.task_name
    return logger


def train_job(cfg: DictConfig) -> TrainJob:
    """The composed config as plain objects (model and data stay unloaded until the job runs); a
    chosen ``decoding`` completed by the objective's own (the slot mode it trains)."""
    from apa.evaluation import decoding_config
    from apa.training import TrainJob

    objective = instantiate(cfg.objective)
    decoding = chosen(cfg, "decoding")
    return TrainJob(
        model=instantiate(cfg.model),
        data=instantiate(cfg.data),
        prompt=instantiate(cfg.prompt),
        objective=objective,
        lora=instantiate(cfg.lora),
        trainer=instantiate(cfg.trainer),
        logger=tracker(cfg),
        output_dir=Path(cfg.paths.output_dir),
        cache_dir=Path(cfg.paths.cache_dir).expanduser(),
        seed=cfg.seed,
        limit=cfg.limit,
        cache_audio_tower=cfg.cache_audio_tower,
        test_split=cfg.test_split,
        score_untrained=cfg.score_untrained,
        decoder=instantiate(decoding_config(objective, decoding)) if decoding else None,
        resamples=cfg.bootstrap_resamples,
        detection=instantiate(cfg.detection),
        optimized_metric=cfg.optimized_metric,
        dev_selection=tuple(cfg.dev_selection),
        config=OmegaConf.to_container(cfg, resolve=True),
    )


def chosen(cfg: DictConfig, key: str) -> dict | None:
    """This command's node for ``key``, if it chose one."""
    node = cfg.get(key)
    return OmegaConf.to_container(node, resolve=True) if node else None


def evaluate_job(cfg: DictConfig) -> EvaluateJob:
    """A checkpoint's folder is read checked (a finished run; only apa's own targets; no remote code
    unless this command line allows it) before anything loads; what this command chooses replaces
    the run's own."""
    run = TrainedRun.open(Path(cfg.checkpoint), cfg.trust_remote_code) if cfg.checkpoint else None

    def build(key: str):
        if run is not None:
            return run.build(key, chosen(cfg, key))
        return instantiate(cfg[key]) if cfg.get(key) else None

    detection = instantiate(cfg.detection)
    decoder = None  # scoring a predictions file decodes nothing (and imports no torch)
    if run is not None:
        decoder = run.decoder(chosen(cfg, "decoding"))
    elif cfg.get("model"):  # an untrained model: generation unless this command chooses
        from apa.evaluation import decoding_config

        decoder = instantiate(decoding_config(None, chosen(cfg, "decoding")))
    return EvaluateJob(
        output_dir=Path(cfg.output_dir),
        logger=instantiate(cfg.logger),
        cache_dir=Path(cfg.paths.cache_dir).expanduser(),
        data=build("data"),
        split=cfg.split,
        limit=cfg.limit,
        references=Path(cfg.references) if cfg.references else None,
        predictions=Path(cfg.predictions) if cfg.predictions else None,
        model=build("model"),
        adapter=run.adapter if run is not None else None,
        prompt=build("prompt"),
        decoder=decoder,
        compare=Path(cfg.compare) if cfg.compare else None,
        detection=run.detection(detection) if run is not None else detection,
        resamples=cfg.bootstrap_resamples,
        seed=cfg.seed,
        config=OmegaConf.to_container(cfg, resolve=True),
    )
