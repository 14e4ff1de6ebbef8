"""Score a model's pronunciation assessments against references.

    python evaluate.py model=tiny logger=none

Every option is a Hydra override; ``python evaluate.py --help`` lists the config groups.
"""

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from apa import evaluation


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
def main(cfg: DictConfig) -> dict[str, float]:
    job = evaluation.EvaluateJob(
        model=instantiate(cfg.model),
        logger=instantiate(cfg.logger),
        output_dir=cfg.paths.output_dir,
        seed=cfg.seed,
        config=OmegaConf.to_container(cfg, resolve=True),
    )
    return evaluation.run(job)


if __name__ == "__main__":
    main()
