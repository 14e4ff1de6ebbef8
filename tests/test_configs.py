"""Every config in conf/ composes, and everything it targets instantiates."""

from pathlib import Path

import pytest
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from apa.data import Corpus
from apa.jobs import evaluate_job, train_job
from apa.models import ModelSource
from apa.tracking import WandbLogger

from .helpers import CONF_DIR

PRIMARY = sorted(path.stem for path in CONF_DIR.glob("*.yaml"))
# Groups whose options the primary configs select (hydra/ is Hydra's own and composed by every run).
GROUP_OPTIONS = sorted(
    (path.parent.name, path.stem) for path in CONF_DIR.glob("*/*.yaml") if path.parent.name != "hydra"
)


def targets(node, where="") -> list[tuple[str, DictConfig]]:
    """Every config node with a ``_target_``, outermost first, with its dotted path."""
    found = []
    if isinstance(node, DictConfig):
        if "_target_" in node:
            return [(where, node)]
        for key in node:
            found += targets(node[key], f"{where}.{key}".lstrip("."))
    return found


def instantiate_all(cfg: DictConfig) -> dict[str, object]:
    return {where: instantiate(node) for where, node in targets(cfg)}


def test_primary_configs_found():
    assert {"train", "evaluate"} <= set(PRIMARY)
    assert {"data", "prompt", "objective", "model", "lora", "trainer", "decoding", "logger", "paths"} <= {
        group for group, _ in GROUP_OPTIONS
    }


def test_every_nested_option_is_used(compose):
    """Nested groups (prompt/format) are composed through the options that select them."""
    used = set()
    for option in (o for g, o in GROUP_OPTIONS if g == "prompt"):
        prompt = compose("train", [f"prompt={option}"]).prompt
        used.add(prompt.format._target_)
    nested = {path.stem for path in (CONF_DIR / "prompt" / "format").glob("*.yaml")}
    assert len(used) == len(nested) == 2


@pytest.mark.parametrize("name", PRIMARY)
def test_primary_config_composes_and_instantiates(compose, name):
    cfg = compose(name)
    OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)  # everything resolves
    objects = instantiate_all(cfg)
    assert isinstance(objects["logger"], WandbLogger)
    assert Path(cfg.paths.output_dir).name == "run"
    if name == "train":
        assert isinstance(objects["model"], ModelSource) and isinstance(objects["data"], Corpus)


def test_evaluate_takes_a_model_prompt_and_data(compose):
    objects = instantiate_all(
        compose("evaluate", ["model=tiny", "prompt=zeroshot", "data=synthetic", "decoding=generate"])
    )
    assert {"model", "prompt", "data", "decoding"} <= set(objects)


@pytest.mark.parametrize(("group", "option"), GROUP_OPTIONS, ids=[f"{g}={o}" for g, o in GROUP_OPTIONS])
def test_every_group_option_composes_and_instantiates(compose, group, option):
    cfg = compose("train", [f"{group}={option}"])
    objects = instantiate_all(cfg)
    node = cfg.get(group)  # experiment presets are global: they have no node of their own
    if node is not None and "_target_" in node:
        assert type(objects[group]).__name__ == node._target_.rsplit(".", 1)[-1]


def test_tiny_model_config_builds_where_paths_say(compose, tmp_path):
    cfg = compose("train", ["model=tiny", f"paths.cache_dir={tmp_path}/cache"])
    source = instantiate(cfg.model)
    assert source.path.parent == tmp_path / "cache" / "models"


def test_logger_none_disables_tracking(compose):
    logger = instantiate(compose("train", ["logger=none"]).logger)
    assert not logger.enabled and logger.report_to == []


def test_unknown_key_is_rejected(compose):
    with pytest.raises(Exception, match="no_such_option"):
        instantiate(compose("train", ["+model.no_such_option=1"]).model)


def test_trainer_arguments_are_valid_training_arguments(compose, tmp_path):
    settings = instantiate(compose("train").trainer)
    arguments = settings.training_arguments(str(tmp_path), seed=3, report_to=[], bf16=False)
    assert arguments.lr_scheduler_type == "cosine" and arguments.learning_rate == 1e-4
    assert arguments.gradient_accumulation_steps == 8 and arguments.seed == 3
    assert not arguments.remove_unused_columns
    with pytest.raises(TypeError, match=r"trainer\.arguments: .*no_such_argument"):
        type(settings)(arguments={"no_such_argument": 1}).training_arguments(str(tmp_path), 0, [], False)


JOBS = {"train": train_job, "evaluate": evaluate_job}


@pytest.mark.parametrize("entry", ["train", "evaluate"])
@pytest.mark.parametrize("limit", [-1, 0, 2.5, True])
def test_a_limit_that_is_not_a_count_is_refused(compose, entry, limit):
    """limit=-1 once dropped each split's last utterance without a word; 0 scored nothing."""
    with pytest.raises(ValueError, match=rf"limit={limit!r}: expected a whole number"):
        JOBS[entry](compose(entry, ["model=tiny", "logger=none", f"limit={limit}"]))


@pytest.mark.parametrize("entry", ["train", "evaluate"])
@pytest.mark.parametrize("setting", ["paths.cache_dir", "paths.output_dir"])
def test_a_folder_setting_that_names_a_file_is_refused(compose, entry, setting, tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    with pytest.raises(NotADirectoryError, match=rf"={a_file}: a file, not a folder"):
        JOBS[entry](compose(entry, ["model=tiny", "logger=none", f"{setting}={a_file}"]))
