"""Training through the real job: every objective runs, resuming reproduces, bad configs fail early."""

import pytest
import torch
from safetensors.torch import load_file
from transformers import TrainerCallback

from apa import training
from apa.data import SyntheticCorpus
from apa.jobs import train_job

SMALL_CORPUS = ["data=synthetic", "data.speakers=4", "data.utterances_per_speaker=4", "data.test_speakers=1"]


def overrides(objective: str, steps: int, *extra: str) -> list[str]:
    return [
        "model=tiny",
        f"objective={objective}",
        "logger=none",
        *SMALL_CORPUS,
        f"trainer.arguments.max_steps={steps}",
        "trainer.arguments.per_device_train_batch_size=2",
        "trainer.arguments.gradient_accumulation_steps=2",
        "trainer.arguments.logging_steps=1",
        "trainer.arguments.disable_tqdm=true",
        "test_split=null",  # evaluation after training is tested in test_entrypoints
        *extra,
    ]


def adapter(run_dir):
    return load_file(run_dir / "adapter" / "adapter_model.safetensors")


@pytest.mark.parametrize("objective", ["ce", "fa", "regression", "simpo_ce"])
def test_every_objective_trains(compose, objective):
    cfg = compose("train", overrides(objective, 2, "prompt=sentence"))
    job = train_job(cfg)
    loss = training.run(job)
    weights = adapter(job.output_dir)
    assert loss > 0 and torch.isfinite(torch.tensor(loss))
    lora_b = [v for k, v in weights.items() if "lora_B" in k]
    assert lora_b and all(v.abs().sum() > 0 for v in lora_b)  # B starts at zero: the adapter moved
    assert any("trainable_tokens_delta" in k for k in weights)  # score-token rows travel with it
    assert ("base_model.model.score_head.net.weight" in weights) == (objective == "regression")
    state = (job.output_dir / "checkpoints" / "checkpoint-2" / "trainer_state.json").read_text()
    assert '"global_step": 2' in state


class StopAfter(TrainerCallback):
    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            control.should_training_stop = True


def test_resumed_run_ends_with_the_same_adapter(compose, tmp_path):
    steps = ["trainer.arguments.save_steps=2", "prompt=sentence", "trainer.arguments.lr_scheduler_type=cosine"]
    whole = train_job(compose("train", overrides("fa", 4, *steps)))
    training.run(whole)

    interrupted = train_job(compose("train", overrides("fa", 4, *steps)))
    interrupted.output_dir = tmp_path / "interrupted"
    interrupted.callbacks = [StopAfter(2)]
    training.run(interrupted)
    assert sorted(p.name for p in (interrupted.output_dir / "checkpoints").iterdir()) == ["checkpoint-2"]

    resumed = train_job(compose("train", overrides("fa", 4, *steps, "trainer.resume=true")))
    resumed.output_dir = interrupted.output_dir
    training.run(resumed)
    expected, got = adapter(whole.output_dir), adapter(resumed.output_dir)
    assert expected.keys() == got.keys()
    for name in expected:
        assert torch.allclose(expected[name], got[name], atol=1e-6), name
    halfway = load_file(interrupted.output_dir / "checkpoints" / "checkpoint-2" / "adapter_model.safetensors")
    assert any(not torch.equal(halfway[name], got[name]) for name in got)  # the resumed steps did train


class CheckpointingSeen(TrainerCallback):
    """Records which modules had activation checkpointing on while training."""

    def __init__(self):
        self.layers: list[str] = []

    def on_step_end(self, args, state, control, model=None, **kwargs):
        self.layers = [name for name, m in model.named_modules() if getattr(m, "gradient_checkpointing", False)]


def test_activation_checkpointing_trains_the_same_adapter(compose, tmp_path):
    """Recomputing activations in the backward pass saves memory and changes nothing else."""
    plain = train_job(compose("train", overrides("fa", 2, "prompt=sentence")))
    training.run(plain)
    checkpointed = train_job(
        compose("train", overrides("fa", 2, "prompt=sentence", "trainer.arguments.activation_checkpointing=true"))
    )
    checkpointed.output_dir = tmp_path / "checkpointed"
    checkpointed.callbacks = [seen := CheckpointingSeen()]
    training.run(checkpointed)
    assert seen.layers
    expected, got = adapter(plain.output_dir), adapter(checkpointed.output_dir)
    assert expected.keys() == got.keys()
    for name in expected:
        assert torch.allclose(expected[name], got[name], atol=1e-5), name


class NeverLoaded:
    def load(self):
        raise AssertionError("the model was loaded before the configuration was checked")


@pytest.mark.parametrize(
    ("objective", "prompt", "message"),
    [
        ("fa", "prompt.score_tokens=digits", "set prompt.score_tokens=added"),
        ("regression", "prompt=zeroshot", "prompt zeroshot writes score_tokens=digits"),
    ],
)
def test_bad_combinations_fail_before_the_model_loads(compose, objective, prompt, message):
    job = train_job(compose("train", overrides(objective, 1, prompt)))
    job.model = NeverLoaded()
    with pytest.raises(ValueError, match=message):
        training.run(job)


def test_a_prompt_without_slots_is_refused(compose):
    from hydra.errors import InstantiationException

    with pytest.raises(InstantiationException, match="asks for no scores"):
        train_job(compose("train", overrides("regression", 1, "prompt=sentence", "~prompt.aspects.sentence")))


def test_unknown_aspect_is_named(compose):
    from hydra.errors import InstantiationException

    with pytest.raises(InstantiationException, match="speed"):
        train_job(compose("train", overrides("ce", 1, "prompt.aspects.sentence=[accuracy,speed]")))


def test_small_corpus_fixture_is_small(apa_cache):
    corpus = SyntheticCorpus(str(apa_cache), speakers=4, utterances_per_speaker=4, test_speakers=1)
    assert len(corpus.utterances("train")) == 12


class Logged(TrainerCallback):
    def __init__(self):
        self.logs: list[dict] = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        self.logs.append(dict(logs))


def logged_steps(compose, objective: str, steps: int, *extra: str) -> list[dict]:
    """Train the tiny model ``steps`` steps on ``objective`` and ``extra`` overrides: each step's log."""
    job = train_job(compose("train", overrides(objective, steps, *extra)))
    job.callbacks = [logged := Logged()]
    training.run(job)
    return [log for log in logged.logs if "loss" in log]


# objective -> (overrides, the loss its logged parts make)
LOGGED_PARTS = {
    "fa": (["objective.ce_weight=0.5"], lambda p: p["fa_mse"] + 1.0 * p["slot_ce"] + 0.5 * p["ce"]),
    "simpo_ce": (["objective.ce_weight=0.3"], lambda p: p["simpo"] + 0.3 * p["ce"]),
}
PARTS = {
    "fa": ("fa_mse", "slot_ce", "ce"),
    "simpo_ce": ("simpo", "ce", "margin", "reward_acc", "chosen_reward", "rejected_reward"),
}


@pytest.mark.parametrize("objective", ["fa", "simpo_ce"])
def test_the_trainer_logs_every_part_of_the_objective_and_the_throughput(compose, monkeypatch, objective):
    """Each logging step: the loss and its parts (averaged over the step's micro-batches), and the
    samples (utterances, not rows: a SimPO pair is one) and tokens a second of exactly the batches
    seen since the last log."""
    from apa.training.trainer import ScoringTrainer

    seen = []  # (samples, tokens) of each micro-batch
    compute_loss = ScoringTrainer.compute_loss

    def counting(self, model, inputs, *args, **kwargs):
        seen.append((int(inputs["audio_index"].max()) + 1, int(inputs["attention_mask"].sum())))
        return compute_loss(self, model, inputs, *args, **kwargs)

    monkeypatch.setattr(ScoringTrainer, "compute_loss", counting)
    extra, total = LOGGED_PARTS[objective]
    job = train_job(compose("train", overrides(objective, 2, "prompt=sentence", *extra)))
    job.callbacks = [logged := Logged()]
    training.run(job)
    steps = [log for log in logged.logs if "loss" in log]
    assert len(steps) == 2 and len(seen) == 4  # two steps of two micro-batches (gradient accumulation)
    for step, log in enumerate(steps):
        parts = {name: log[name] for name in PARTS[objective]}
        assert all(torch.isfinite(torch.tensor(v)) for v in parts.values()), log
        assert log["loss"] == pytest.approx(total(parts), abs=2e-4)
        samples, tokens = map(sum, zip(*seen[2 * step : 2 * step + 2], strict=True))
        assert samples == 4  # two utterances a micro-batch
        assert log["samples_per_second"] > 0 and log["tokens_per_second"] > 0
        assert log["tokens_per_second"] / log["samples_per_second"] == pytest.approx(tokens / samples, rel=0.01)
        others = {name for names in PARTS.values() for name in names} - set(PARTS[objective])
        assert not others & set(log) and "mse" not in log  # only this objective's parts
    if objective == "fa":
        assert all(log[name] > 0 for log in steps for name in PARTS["fa"])
    else:
        for log in steps:  # the mean margin is the difference of the mean rewards (float32 rewards)
            assert log["margin"] == pytest.approx(log["chosen_reward"] - log["rejected_reward"], abs=1e-4)


@pytest.mark.parametrize("left_behind", ["config.yaml", "adapter", "metrics.json", "checkpoints"])
def test_training_into_a_folder_that_holds_a_run_is_refused_before_the_model_loads(
    compose, tmp_path, monkeypatch, left_behind
):
    job = train_job(compose("train", overrides("fa", 1, "prompt=sentence")))
    job.output_dir = tmp_path / "run"
    (job.output_dir / ".hydra").mkdir(parents=True)  # Hydra's own record is written as every job starts
    if "." in left_behind:
        (job.output_dir / left_behind).write_text("")
    else:
        (job.output_dir / left_behind).mkdir()
    monkeypatch.setattr(type(job.model), "load", lambda self: pytest.fail("the model loaded first"))
    with pytest.raises(ValueError, match=rf"already holds a training run \({left_behind}\).*trainer.resume=true"):
        training.run(job)
    assert sorted(p.name for p in job.output_dir.iterdir()) == sorted([".hydra", left_behind])  # nothing written


def test_a_folder_with_only_hydras_record_is_a_new_run(compose, tmp_path):
    job = train_job(compose("train", overrides("fa", 1, "prompt=sentence")))
    job.output_dir = tmp_path / "run"
    (job.output_dir / ".hydra").mkdir(parents=True)
    (job.output_dir / "train.log").write_text("")
    training.run(job)
    assert (job.output_dir / "adapter" / "adapter_model.safetensors").is_file()


@pytest.mark.parametrize("where", ["loss", "gradient norm"])
def test_a_non_finite_step_stops_training_and_keeps_the_checkpoints_before_it(compose, where):
    from apa.training.trainer import NonFiniteTraining

    job = train_job(compose("train", overrides("fa", 3, "prompt=sentence", "trainer.arguments.save_steps=1")))
    forward, calls = job.objective.forward, []

    def poisoned(model, batch):  # from the second optimizer step on (2 micro-batches a step)
        output = forward(model, batch)
        calls.append(1)
        if len(calls) > 2:
            if where == "loss":
                output.loss = output.loss * float("nan")
            else:  # the loss stays finite, one trained weight's gradient does not
                trained = next(p for p in model.parameters() if p.requires_grad)
                trained.register_hook(lambda grad: grad * float("inf"))
        return output

    job.objective.forward = poisoned
    with pytest.raises(NonFiniteTraining, match=rf"stopped at step 2: the {where} is (nan|inf)"):
        training.run(job)
    assert sorted(p.name for p in (job.output_dir / "checkpoints").iterdir()) == ["checkpoint-1"]
    assert not (job.output_dir / "adapter").exists() and not (job.output_dir / "config.yaml").exists()
