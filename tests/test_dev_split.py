"""The development split: held-out training speakers, evaluated during training, best checkpoint kept."""

import importlib
import json
import logging
from dataclasses import replace

import pytest
import torch
from safetensors.torch import load_file

from apa import training
from apa.data import DEV, TRAIN, SyntheticCorpus, Utterance
from apa.data.corpus import held_out_speakers
from apa.data.records import Scores
from apa.jobs import train_job

from .test_training import adapter, overrides  # a corpus of 3 training speakers, 1 test speaker


def utterances(speakers: dict[str, int]) -> list[Utterance]:
    """``count`` dummy utterances for each speaker."""
    return [
        Utterance(id=f"{s}-{i}", text="a", audio=b"", scores=Scores(), speaker=s)
        for s, count in speakers.items()
        for i in range(count)
    ]


def test_held_out_speakers_by_fraction_or_count_and_seed():
    corpus = utterances({f"spk{i:02d}": 3 for i in range(40)})
    by_fraction = held_out_speakers(corpus, 0.1, seed=0)
    assert len(by_fraction) == 4  # 10% of 40 speakers
    assert by_fraction == held_out_speakers(corpus, 4, seed=0)  # same draw for the same count and seed
    assert held_out_speakers(corpus, 0.1, seed=0) == by_fraction  # deterministic
    assert held_out_speakers(corpus, 0.1, seed=1) != by_fraction  # the seed decides which
    assert len(held_out_speakers(corpus, 0.001, seed=0)) == 1  # a fraction never rounds to no speaker


@pytest.mark.parametrize("bad", [0, -1, 40, 41, 1.0, 2.5, True])
def test_held_out_speakers_refuses_impossible_sizes(bad):
    with pytest.raises(ValueError, match="dev_speakers"):
        held_out_speakers(utterances({f"spk{i}": 1 for i in range(40)}), bad, seed=0)


def test_held_out_speakers_needs_every_speaker():
    corpus = [*utterances({"a": 2, "b": 2}), Utterance(id="nobody-1", text="a", audio=b"", scores=Scores())]
    with pytest.raises(ValueError, match="nobody-1"):
        held_out_speakers(corpus, 1, seed=0)


def test_dev_split_is_carved_from_train_by_speaker(apa_cache):
    settings = dict(cache_dir=str(apa_cache), speakers=6, utterances_per_speaker=3, test_speakers=2)
    whole = SyntheticCorpus(**settings)
    split = SyntheticCorpus(**settings, dev_speakers=2, dev_seed=3)
    train, dev, test = (split.utterances(name) for name in (TRAIN, DEV, "test"))
    speakers = {name: {u.speaker for u in part} for name, part in (("train", train), ("dev", dev), ("test", test))}
    assert len(speakers["dev"]) == 2 and len(speakers["train"]) == 2
    assert not speakers["dev"] & speakers["train"] and not speakers["dev"] & speakers["test"]
    assert sorted(u.id for u in train + dev) == sorted(u.id for u in whole.utterances(TRAIN))  # nothing lost
    assert [u.id for u in test] == [u.id for u in whole.utterances("test")]  # the test split is untouched
    with pytest.raises(FileNotFoundError, match="no split 'dev'"):  # without dev_speakers: the corpus's own
        whole.utterances(DEV)


DEV_SELECTION = [
    "data.dev_speakers=1",
    "trainer.arguments.eval_strategy=steps",
    "trainer.arguments.eval_steps=1",
    "trainer.arguments.save_steps=1",
    "trainer.arguments.save_total_limit=null",
    "trainer.arguments.load_best_model_at_end=true",
    # RMSE is defined even for the near-constant answers of an untrained model. Keeping the *worst*
    # makes an early checkpoint the one kept, so that loading it at the end is exercised.
    "trainer.arguments.metric_for_best_model=dev/sentence/total/rmse",
    "trainer.arguments.greater_is_better=true",
    "trainer.arguments.learning_rate=0.01",
]


def test_training_keeps_the_checkpoint_best_on_the_dev_split(compose, caplog):
    job = train_job(compose("train", overrides("regression", 3, "prompt=sentence", *DEV_SELECTION)))
    with caplog.at_level(logging.INFO, logger="apa.training.trainer"):
        training.run(job)
    checkpoints = job.output_dir / "checkpoints"
    state = json.loads((checkpoints / "checkpoint-3" / "trainer_state.json").read_text())
    evaluations = [e for e in state["log_history"] if "eval_dev/sentence/total/rmse" in e]
    assert [e["step"] for e in evaluations] == [1, 2, 3]  # the dev split was scored at every evaluation
    assert all("eval_dev/sentence/fluency/pcc" in e for e in evaluations)  # every aspect the prompt asks for
    assert all(e["eval_dev/sentence/total/sd_reference"] > 0 <= e["eval_dev/sentence/total/sd"] for e in evaluations)
    headlines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("dev split at step")]
    assert [h.split(":")[0] for h in headlines] == [f"dev split at step {step}" for step in (1, 2, 3)]
    first = evaluations[0]
    assert headlines[0].endswith(
        f"sentence/total/rmse {first['eval_dev/sentence/total/rmse']:.3f}, sd of predictions "
        f"{first['eval_dev/sentence/total/sd']:.2f} (references {first['eval_dev/sentence/total/sd_reference']:.2f})"
    )
    best = max(evaluations, key=lambda e: e["eval_dev/sentence/total/rmse"])
    assert state["best_metric"] == pytest.approx(best["eval_dev/sentence/total/rmse"])
    assert state["best_model_checkpoint"].endswith(f"checkpoint-{best['step']}")
    kept = load_file(checkpoints / f"checkpoint-{best['step']}" / "adapter_model.safetensors")
    final = adapter(job.output_dir)
    assert kept.keys() == final.keys()
    assert all(torch.equal(kept[name], final[name]) for name in kept)  # the saved adapter is the best one
    assert best["step"] < 3  # ... and not simply the last


def test_with_no_defined_dev_metric_the_last_adapter_is_kept_and_said_so(compose, caplog, monkeypatch):
    """A constant prediction leaves the PCC undefined at every evaluation: nothing is "best"."""
    run_module = importlib.import_module("apa.training.run")  # the module; apa.training.run is its function
    scored = run_module.evaluate

    def undefined(*arguments, **options):
        report = scored(*arguments, **options)
        return replace(report, metrics=dict.fromkeys(report.metrics))

    monkeypatch.setattr(run_module, "evaluate", undefined)
    job = train_job(compose("train", overrides("regression", 2, "prompt=sentence", *DEV_SELECTION)))
    with caplog.at_level(logging.WARNING, logger="apa.training.run"):
        training.run(job)
    state = json.loads((job.output_dir / "checkpoints" / "checkpoint-2" / "trainer_state.json").read_text())
    assert state["best_model_checkpoint"] is None
    assert any("the last step's adapter is kept" in r.getMessage() for r in caplog.records)
    kept = load_file(job.output_dir / "checkpoints" / "checkpoint-2" / "adapter_model.safetensors")
    final = adapter(job.output_dir)
    assert all(torch.equal(kept[name], final[name]) for name in kept)


def test_evaluation_without_a_dev_split_fails_before_the_model_loads(compose, monkeypatch):
    job = train_job(compose("train", overrides("fa", 1, *DEV_SELECTION[1:])))

    def must_not_load(self):
        raise AssertionError("the model was loaded before the configuration was checked")

    monkeypatch.setattr(type(job.model), "load", must_not_load)
    with pytest.raises(ValueError, match=r"data\.dev_speakers"):
        training.run(job)
