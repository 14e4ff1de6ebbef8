"""Score pronunciation assessments: any system's predictions, a training run, or a model zero-shot.

    python evaluate.py predictions=P.json references=R.json output_dir=D
    python evaluate.py checkpoint=outputs/train/runs/<time>
    python evaluate.py model=qwen2_audio_7b prompt=zeroshot data=speechocean762

Every option is a Hydra override; ``python evaluate.py --help`` lists the config groups. Scoring a
predictions file imports no model or training code (torch, transformers, peft): what a checkpoint
or a model needs is imported where it is read.
"""

from pathlib import Path

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from apa import evaluation
from apa.quiet import ignore_library_warnings
from apa.trained_run import TrainedRun


def chosen(cfg: DictConfig, key: str) -> dict | None:
    """This command's node for ``key``, if it chose one."""
    node = cfg.get(key)
    return OmegaConf.to_container(node, resolve=True) if node else None


def build_job(cfg: DictConfig) -> evaluation.EvaluateJob:
    """A checkpoint's folder is read checked (a finished run; only apa's own targets; no remote code
    unless this command line allows it) before anything loads; what this command chooses replaces
    the run's own."""
    run = TrainedRun.open(Path(cfg.checkpoint), cfg.trust_remote_code) if cfg.checkpoint else None

    def build(key: str):
        if run is not None:
            return run.build(key, chosen(cfg, key))
        return instantiate(cfg[key]) if cfg.get(key) else None

    decoder = None
    if run is not None:
        decoder = run.decoder(chosen(cfg, "decoding"))
    elif cfg.get("model"):  # an untrained model: generation unless this command chooses
        decoder = instantiate(evaluation.decoding_config(None, chosen(cfg, "decoding")))
    return evaluation.EvaluateJob(
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
        resamples=cfg.bootstrap_resamples,
        seed=cfg.seed,
        config=OmegaConf.to_container(cfg, resolve=True),
    )


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
def main(cfg: DictConfig) -> float | None:
    ignore_library_warnings()
    metrics = evaluation.run(build_job(cfg))
    return metrics.get("sentence/total/pcc")


if __name__ == "__main__":
    main()
