"""Score pronunciation assessments: any system's predictions, a training run, or a model zero-shot.

    python evaluate.py predictions=P.json references=R.json output_dir=D
    python evaluate.py checkpoint=outputs/train/runs/<time>
    python evaluate.py model=qwen2_audio_7b prompt=zeroshot data=speechocean762

Every option is a Hydra override; ``python evaluate.py --help`` lists the config groups. Scoring a
predictions file imports no model or training code (torch, transformers, peft): what a checkpoint
or a model needs is imported where it is read.
"""

import hydra
from omegaconf import DictConfig

from apa import evaluation
from apa.jobs import evaluate_job
from apa.quiet import ignore_library_warnings


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
def main(cfg: DictConfig) -> float | None:
    ignore_library_warnings()
    metrics = evaluation.run(evaluate_job(cfg))
    return metrics.get("sentence/total/pcc")


if __name__ == "__main__":
    main()
