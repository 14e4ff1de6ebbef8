"""Sweeps and presets: the SLURM launcher and Optuna sweeper compose, presets set the papers' values."""

import json

import pytest
import yaml
from hydra.utils import instantiate

from .helpers import CONF_DIR, compose_config, launch

EXPERIMENTS = sorted(path.stem for path in (CONF_DIR / "experiment").glob("*.yaml"))
TRAINING_PRESETS = [e for e in EXPERIMENTS if e != "parikh2025_zeroshot"]


def test_slurm_launcher_and_optuna_sweeper_compose(tmp_path):
    result = launch(
        "train.py",
        "hydra/launcher=slurm",
        "hydra/sweeper=optuna_lr_rank",
        "--cfg",
        "hydra",
        outputs=tmp_path / "outputs",
    )
    assert result.returncode == 0, result.stderr
    assert "hydra_submitit_launcher.submitit_launcher.SlurmLauncher" in result.stdout
    assert "hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper" in result.stdout
    assert "trainer.arguments.learning_rate: tag(log, interval(1e-5, 1e-3))" in result.stdout
    assert "direction: maximize" in result.stdout and "gpus_per_node: 1" in result.stdout


def test_every_experiment_is_a_training_preset_with_a_launch_command():
    assert {
        "ma2025_ce",
        "ma2025_fa",
        "ma2025_regression",
        "wang2025_ft",
        "wang2025_simpo",
        "parikh2025_zeroshot",
    } <= set(EXPERIMENTS)
    for name in EXPERIMENTS:
        header = (CONF_DIR / "experiment" / f"{name}.yaml").read_text()
        assert header.startswith("# @package _global_")
        assert f"experiment={name}" in header, f"{name}: the header gives no launch command"


@pytest.mark.parametrize("name", TRAINING_PRESETS)
def test_training_presets_compose_and_instantiate(name):
    cfg = compose_config("train", [f"experiment={name}"])
    assert cfg.task_name == name
    for group in ("model", "data", "prompt", "objective", "lora", "trainer"):
        instantiate(cfg[group])


def test_papers_hyperparameters():
    ma = compose_config("train", ["experiment=ma2025_fa"])
    assert (ma.lora.r, ma.trainer.arguments.num_train_epochs, ma.trainer.arguments.learning_rate) == (16, 2, 1e-4)
    assert ma.trainer.arguments.lr_scheduler_type == "cosine" and ma.decoding.readout == "soft"
    assert ma.lora.target_modules.endswith("(q_proj|v_proj)")  # their ~10M trainable parameters
    wang = compose_config("train", ["experiment=wang2025_simpo"])
    arguments = wang.trainer.arguments
    assert wang.lora.r == 8 and wang.prompt.name == "wang2025_multi" and wang.prompt.score_tokens == "digits"
    assert (arguments.per_device_train_batch_size, arguments.gradient_accumulation_steps) == (1, 8)
    assert (arguments.warmup_steps, arguments.learning_rate, arguments.num_train_epochs) == (0.1, 1e-4, 3)
    assert arguments.bf16 and (wang.objective.beta, wang.objective.gamma, wang.objective.ce_weight) == (0.1, 0.5, 0.1)
    assert "q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj" in wang.lora.target_modules  # all modules
    single = compose_config("train", ["experiment=wang2025_ft_sentence_fluency"])
    assert single.prompt.aspects == {"sentence": ["fluency"]} and single.lora.r == 8
    parikh = compose_config("evaluate", ["experiment=parikh2025_zeroshot"])
    assert parikh.prompt.name == "parikh2025" and list(parikh.split) == ["train", "test"]
    for cfg in (ma, wang, single, parikh):
        assert cfg.model._target_ == "apa.models.Qwen2AudioCheckpoint" and cfg.data._target_.endswith("Speechocean762")


def test_a_sweep_receives_the_dev_metric_at_each_trials_kept_checkpoint_never_the_test_metric(tmp_path):
    development = [
        "data.dev_speakers=1",
        "trainer.arguments.eval_strategy=steps",
        "trainer.arguments.eval_steps=1",
        "trainer.arguments.save_steps=1",
        "trainer.arguments.load_best_model_at_end=true",
        "trainer.arguments.metric_for_best_model=dev/sentence/total/rmse",
        "optimized_metric=dev/sentence/total/rmse",  # defined even for an untrained model's answers
    ]
    tiny = [
        "model=tiny", "data=synthetic", "data.speakers=4", "data.utterances_per_speaker=3", "data.test_speakers=1",
        "trainer.arguments.max_steps=2", "trainer.arguments.gradient_accumulation_steps=1", "bootstrap_resamples=10",
    ]  # fmt: skip
    sweep = ["-m", "hydra/sweeper=optuna_lr_rank", "hydra.sweeper.n_trials=2", "hydra.sweeper.direction=minimize"]
    sweep += ["objective=regression", "prompt=sentence", "logger=none", *tiny, *development]
    result = launch("train.py", *sweep, outputs=tmp_path / "outputs")
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep_dir,) = (tmp_path / "outputs" / "train" / "multiruns").iterdir()
    best = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())["best_value"]
    kept, tested = [], []
    for trial in ("0", "1"):
        states = sorted((sweep_dir / trial / "checkpoints").glob("checkpoint-*/trainer_state.json"))
        kept.append(json.loads(states[-1].read_text())["best_metric"])
        tested.append(json.loads((sweep_dir / trial / "metrics.json").read_text())["metrics"]["sentence/total/rmse"])
    assert best == pytest.approx(min(kept))  # each trial returned its kept checkpoint's dev RMSE
    assert all(best != pytest.approx(value) for value in tested)  # not a test split's
