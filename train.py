"""Fine-tune Qwen2-Audio with LoRA adapters to score pronunciation.

    python train.py model=tiny data=synthetic objective=fa logger=none   # offline, CPU
    python train.py model=qwen2_audio_7b objective=simpo_ce               # the real model, on a GPU

Every option is a Hydra override; ``python train.py --help`` lists the config groups.
"""

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from apa import evaluation, training
from apa.quiet import ignore_library_warnings


def tracker(cfg: DictConfig):
    """The W&B logger; without a group set, a multirun's jobs share one named after its folder."""
    logger = instantiate(cfg.logger)
    if logger.group is None:
        hydra = HydraConfig.get()
        multirun = hydra.mode == RunMode.MULTIRUN
        logger.group = f"{cfg.task_name}-{Path(hydra.sweep.dir).name}" if multirun else cfg.task_name
    return logger


def build_job(cfg: DictConfig) -> training.TrainJob:
    """The composed config as plain objects (model and data stay unloaded until the job runs); a
    chosen ``decoding`` completed by the objective's own (the slot mode it trains)."""
    objective = instantiate(cfg.objective)
    chosen = OmegaConf.to_container(cfg.decoding, resolve=True) if cfg.get("decoding") else None
    return training.TrainJob(
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
        decoder=instantiate(evaluation.decoding_config(objective, chosen)) if chosen else None,
        resamples=cfg.bootstrap_resamples,
        optimized_metric=cfg.optimized_metric,
        dev_selection=tuple(cfg.dev_selection),
        config=OmegaConf.to_container(cfg, resolve=True),
    )


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    ignore_library_warnings()
    return training.run(build_job(cfg))


if __name__ == "__main__":
    main()
