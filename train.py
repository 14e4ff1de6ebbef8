"""Fine-tune Qwen2-Audio with LoRA adapters to score pronunciation.

    python train.py model=tiny data=synthetic objective=fa logger=none   # offline, CPU
    python train.py model=qwen2_audio_7b objective=simpo_ce               # the real model, on a GPU

Every option is a Hydra override; ``python train.py --help`` lists the config groups.
"""

import hydra
from omegaconf import DictConfig

from apa import training
from apa.jobs import train_job
from apa.quiet import ignore_library_warnings


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    ignore_library_warnings()
    return training.run(train_job(cfg))


if __name__ == "__main__":
    main()
