"""A run folder: one spelling of its layout; evaluate.py checkpoint=DIR cannot run its code, and
what is not a finished run is refused before any model loads."""

import ast
import re

import pytest
import torch
import yaml
from omegaconf import OmegaConf
from safetensors.torch import save_file

from apa import jobs, runs, score
from apa.evaluation import GenerationDecoder, RegressionDecoder, SlotDecoder
from apa.models import Qwen2AudioCheckpoint
from apa.models.offline import TinyQwen2Audio
from apa.objectives import Objective
from apa.runs import CONF_DIR, RUN_GROUPS, RunFolderError, config_targets, read_run_config

from .helpers import PROJECT_ROOT
from .test_training import overrides

LAYOUT = {
    runs.RUN_CONFIG,
    runs.ADAPTER_DIR,
    runs.CHECKPOINT_DIR,
    runs.PREDICTIONS,
    runs.REFERENCES,
    runs.ANSWERS,
    runs.METRICS,
    runs.REPORT,
    runs.UNTRAINED_DIR,
    runs.REPORT,
    runs.PLOTS_DIR,
    runs.ADAPTER_CONFIG,
    runs.ADAPTER_WEIGHTS,
    runs.HEAD_SPEC,
}
SOURCES = [
    *sorted((PROJECT_ROOT / "apa").rglob("*.py")),
    *sorted((PROJECT_ROOT / "bench").glob("*.py")),
    PROJECT_ROOT / "train.py",
    PROJECT_ROOT / "evaluate.py",
]


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PROJECT_ROOT)))
def test_only_apa_runs_spells_the_layout(path):
    """Training writes the folder that evaluation, comparison and `apa score` read: a name spelt
    anywhere else could drift from the one the other side uses."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    strings = {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)}
    assert path == PROJECT_ROOT / "apa" / "runs.py" or not strings & LAYOUT, f"use apa.runs' {strings & LAYOUT}"


@pytest.fixture
def run_folder(compose, tmp_path):
    """A finished run's folder as train.py leaves it (the adapter's weights a placeholder); returns
    the folder and a function that rewrites its config."""
    folder = tmp_path / "runs" / "crafted"
    (folder / "adapter").mkdir(parents=True)
    save_file({"w": torch.zeros(1)}, folder / "adapter" / "adapter_model.safetensors")
    (folder / "adapter" / "adapter_config.json").write_text("{}")
    config = OmegaConf.to_container(compose("train", overrides("fa", 1, "prompt=sentence")), resolve=True)

    def write(change=lambda c: None):
        changed = yaml.safe_load(yaml.safe_dump(config))
        change(changed)
        (folder / "config.yaml").write_text(yaml.safe_dump(changed))
        return folder

    write()
    return folder, write


def evaluate_job(compose, folder, *extra):
    return jobs.evaluate_job(compose("evaluate", [f"checkpoint={folder}", "logger=none", *extra]))


def test_a_finished_run_is_read(compose, run_folder):
    folder, _ = run_folder
    job = evaluate_job(compose, folder)
    assert isinstance(job.model, TinyQwen2Audio) and job.prompt.name == "sentence" and job.decoder.masked_slots
    assert job.adapter == folder / "adapter"


def test_allowed_targets_are_those_of_apas_config_groups():
    allowed = config_targets(CONF_DIR, RUN_GROUPS)
    assert {"apa.data.Speechocean762", "apa.objectives.FairAverage", "apa.prompts.LineFormat"} <= allowed
    assert not {"builtins.print", "os.system", "peft.LoraConfig"} & allowed  # lora is not a group evaluate builds


def set_objective_target(target):
    return lambda config: config["objective"].update(_target_=target)


@pytest.mark.parametrize(
    ("change", "refused"),
    [
        (set_objective_target("builtins.print"), "objective._target_='builtins.print'"),
        (set_objective_target("apa.atomic.shutil.rmtree"), "objective._target_='apa.atomic.shutil.rmtree'"),
        (
            lambda c: c["objective"].update(extra={"_target_": "os.system", "_args_": ["touch pwned"]}),
            "objective.extra._target_='os.system'",
        ),
        (lambda c: c["prompt"]["format"].update(_target_=["not", "a", "name"]), "prompt.format._target_=["),
        (
            lambda c: c["data"].update(root="${oc.create:'{_target_: builtins.print}'}"),
            "interpolations in data.root",
        ),
    ],
    ids=["builtin", "apa-prefix", "nested", "not-a-string", "interpolation"],
)
def test_a_crafted_run_folder_cannot_choose_code(compose, run_folder, capsys, change, refused):
    folder, write = run_folder
    write(change)
    with pytest.raises(RunFolderError, match=r"refused|interpolations") as error:
        evaluate_job(compose, folder)
    assert refused in str(error.value) and str(folder / "config.yaml") in str(error.value)
    assert capsys.readouterr().out == ""  # nothing was called


@pytest.mark.parametrize(
    ("target", "expected", "masked"),
    [
        ("apa.objectives.FairAverage", SlotDecoder, True),
        ("apa.objectives.Regression", RegressionDecoder, True),
        ("apa.objectives.CrossEntropy", GenerationDecoder, False),
    ],
)
def test_the_decoder_comes_from_the_objectives_class_never_an_instance(
    compose, run_folder, monkeypatch, target, expected, masked
):
    """The class flags say how a run decodes, so no objective is built (the fixture's fair-average
    arguments would not even fit the others); a chosen slot decoder reads masked slots as trained."""

    def refuse(*args, **kwargs):
        raise AssertionError("an objective was instantiated")

    monkeypatch.setattr(Objective, "__init__", refuse)
    folder, write = run_folder
    write(set_objective_target(target))
    assert type(evaluate_job(compose, folder).decoder) is expected
    chosen = evaluate_job(compose, folder, "decoding=slots", "decoding.readout=hard").decoder
    assert isinstance(chosen, SlotDecoder) and chosen.readout == "hard" and chosen.masked_slots == masked


def test_a_run_decodes_as_it_chose_unless_the_command_line_chooses(compose, run_folder):
    """A run trained with decoding.readout=hard is scored that way again, as `apa score` reads it."""
    folder, write = run_folder
    write(lambda c: c.update(decoding={"_target_": "apa.evaluation.SlotDecoder", "readout": "hard"}))
    own = evaluate_job(compose, folder).decoder
    assert isinstance(own, SlotDecoder) and own.readout == "hard" and own.masked_slots
    assert evaluate_job(compose, folder, "decoding=slots").decoder.readout == "soft"


def test_remote_code_comes_from_the_command_line_only(compose, run_folder):
    folder, write = run_folder
    write(lambda c: c.update(model={"_target_": "apa.models.Qwen2AudioCheckpoint", "name_or_path": "x/y",
                                    "trust_remote_code": True}))  # fmt: skip
    with pytest.raises(RunFolderError, match=r"sets model\.trust_remote_code: a run folder cannot ask"):
        evaluate_job(compose, folder)
    job = evaluate_job(compose, folder, "trust_remote_code=true")
    assert isinstance(job.model, Qwen2AudioCheckpoint) and job.model.trust_remote_code


def test_what_is_not_a_finished_run_is_refused_before_any_model_loads(compose, run_folder, tmp_path):
    folder, _ = run_folder
    with pytest.raises(RunFolderError, match=r"nowhere: no such folder \(expected a folder train\.py wrote"):
        evaluate_job(compose, tmp_path / "nowhere")
    (folder / "adapter" / "adapter_model.safetensors").write_bytes(b"\x00" * 7)
    with pytest.raises(RunFolderError, match=r"adapter/adapter_model\.safetensors is unreadable"):
        evaluate_job(compose, folder)
    (folder / "adapter" / "adapter_model.safetensors").unlink()
    with pytest.raises(RunFolderError, match=r"adapter/adapter_model\.safetensors is missing"):
        evaluate_job(compose, folder)
    (folder / "config.yaml").write_text("objective: [unclosed")
    with pytest.raises(RunFolderError, match=r"config\.yaml: not readable YAML"):
        evaluate_job(compose, folder)
    (folder / "config.yaml").write_text("seed: 3\n")
    with pytest.raises(RunFolderError, match=r"not a training run's config \(expected the groups model, data"):
        evaluate_job(compose, folder)
    (folder / "config.yaml").unlink()
    (folder / "checkpoints").mkdir()
    with pytest.raises(RunFolderError, match=r"not a finished training run, no config\.yaml .*trainer\.resume=true"):
        evaluate_job(compose, folder)


def test_optional_groups_may_be_null_and_are_checked_too(run_folder):
    folder, write = run_folder
    allowed = config_targets(CONF_DIR, (*RUN_GROUPS, "decoding"))
    assert read_run_config(folder, RUN_GROUPS, allowed, optional=["decoding"])["decoding"] is None
    write(lambda c: c.update(decoding={"_target_": "builtins.exec", "_args_": ["print(1)"]}))
    with pytest.raises(RunFolderError, match=r"decoding\._target_='builtins\.exec'"):
        read_run_config(folder, RUN_GROUPS, allowed, optional=["decoding"])


BILLION_LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(9)
)


@pytest.mark.parametrize(
    ("text", "refused"),
    [
        (BILLION_LAUGHS + "model: *j\n", r"a YAML alias \(\*a\)"),  # 9^10 strings once expanded
        ("model: &self [*self]\n", r"a YAML alias \(\*self\)"),  # refers to itself
        ("model: " + "[" * 40 + "]" * 40 + "\n", "nested over 32 levels deep"),
    ],
    ids=["alias-bomb", "self-reference", "deep"],
)
def test_a_config_that_would_expand_without_end_is_refused(compose, run_folder, recording, text, refused):
    folder, _ = run_folder
    (folder / "config.yaml").write_text(text)
    with pytest.raises(RunFolderError, match=refused):
        evaluate_job(compose, folder)
    with pytest.raises(SystemExit) as caught:  # apa score reads the same folder the same way
        score.main([str(recording), "--text", "mike", "--checkpoint", str(folder)])
    assert re.search(refused, str(caught.value.code))


def test_an_oversized_config_is_refused_before_it_is_parsed(compose, run_folder):
    folder, _ = run_folder
    (folder / "config.yaml").write_text("# " + "x" * 2_000_000 + "\n")
    with pytest.raises(RunFolderError, match="bytes; a run's config is at most 1,000,000"):
        evaluate_job(compose, folder)
