"""Fine-tune Qwen2-Audio with LoRA adapters to score pronunciation.

    python train.py model=tiny logger=none            # offline, seconds
    python train.py model=qwen2_audio_7b              # the real model, on a GPU

Every option is a Hydra override; ``python train.py --help`` lists the config groups.
"""

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from apa import training


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    job = training.TrainJob(
        model=instantiate(cfg.model),
        lora=instantiate(cfg.lora),
        logger=instantiate(cfg.logger),
        output_dir=cfg.paths.output_dir,
        seed=cfg.seed,
        config=OmegaConf.to_container(cfg, resolve=True),
    )
    return training.run(job)


if __name__ == "__main__":
    main()
