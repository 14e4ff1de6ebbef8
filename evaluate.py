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

from apa import evaluation, runs
from apa.quiet import ignore_library_warnings


def run_config(cfg: DictConfig) -> DictConfig | None:
    """The checkpoint's config groups, checked (a finished run; only apa's own targets; no remote
    code unless this command line allows it) before anything is loaded."""
    if not cfg.checkpoint:
        return None
    return OmegaConf.create(runs.read_run(Path(cfg.checkpoint), cfg.trust_remote_code))


def from_run_or_here(cfg: DictConfig, run: DictConfig | None, key: str):
    """This command's choice for ``key`` if it made one, else the training run's."""
    node = cfg.get(key) or (run.get(key) if run is not None else None)
    return instantiate(node) if node else None


def build_job(cfg: DictConfig) -> evaluation.EvaluateJob:
    checkpoint = Path(cfg.checkpoint) if cfg.checkpoint else None
    run = run_config(cfg)
    chosen = from_run_or_here(cfg, run, "decoding")  # this command's choice, else how the run decoded
    decoder = evaluation.decoder_for(runs.implied_decoding(run), chosen) if run is not None else chosen
    return evaluation.EvaluateJob(
        output_dir=Path(cfg.output_dir),
        logger=instantiate(cfg.logger),
        cache_dir=Path(cfg.paths.cache_dir).expanduser(),
        data=from_run_or_here(cfg, run, "data"),
        split=cfg.split,
        limit=cfg.limit,
        references=Path(cfg.references) if cfg.references else None,
        predictions=Path(cfg.predictions) if cfg.predictions else None,
        model=from_run_or_here(cfg, run, "model"),
        adapter=checkpoint / runs.ADAPTER_DIR if checkpoint else None,
        prompt=from_run_or_here(cfg, run, "prompt"),
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
