"""A run folder, the one idea that training writes and evaluation, comparison and ``apa score`` read.

Its layout::

    config.yaml        the resolved config (train.py); evaluate.py checkpoint=RUN_DIR rebuilds the model from it
    adapter/           the trained adapter (PEFT's adapter_config.json and adapter_model.safetensors,
                       score_head.json when the objective trains a regression head, ...)
    checkpoints/       the Trainer's checkpoints while the run trains
    predictions.json   the decoded split's scores; references.json, what they are scored against
    answers.json       the raw answers of free generation
    metrics.json       the scores' metrics (with report.md and plots/ beside it)
    dev_history.json   every dev evaluation's metrics by step, and the step kept (a run with a dev split)
    untrained/         the same split decoded before training, when asked (predictions, metrics): the baseline

A run folder is data, and may come from anyone: its config could name any ``_target_`` (Hydra
would call ``builtins.print`` or worse), build one with an interpolation, or ask transformers to
run a model repository's code. So the config is read checked: it may only name targets that apa's
own config groups name, holds no interpolation (train.py writes it resolved), and
``trust_remote_code`` must come from the command line, never from the folder.

This module imports nothing of apa's, so that every layer may use it.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml
from safetensors import SafetensorError, safe_open

RUN_CONFIG = "config.yaml"
ADAPTER_DIR = "adapter"
CHECKPOINT_DIR = "checkpoints"
PREDICTIONS = "predictions.json"
REFERENCES = "references.json"
ANSWERS = "answers.json"
METRICS = "metrics.json"
DEV_HISTORY = "dev_history.json"  # the dev split's metrics at every evaluation, and the step the run kept
REPORT = "report.md"  # the metrics as a markdown table
PLOTS_DIR = "plots"  # a scatter plot per scored aspect
UNTRAINED_DIR = "untrained"
ADAPTER_CONFIG = "adapter_config.json"  # PEFT's names, in adapter/ and in every checkpoint
ADAPTER_WEIGHTS = "adapter_model.safetensors"
HEAD_SPEC = "score_head.json"  # beside the adapter: the regression head to build before its weights load
HYDRA_RECORD = Path(".hydra") / "hydra.yaml"  # Hydra's record of a launched run (where it ran: runtime.cwd)

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"  # the targets a run may name are those of these groups
RUN_GROUPS = ("model", "data", "prompt", "objective")  # what a run folder brings; only these are instantiated
OPTIONAL_GROUPS = (
    "decoding",
    "detection",
)  # how the run is read, its dev-chosen threshold (runs from before lack them)
TARGET = "_target_"
REMOTE_CODE = "trust_remote_code"


class RunFolderError(ValueError):
    """A ``checkpoint=`` that is not a finished training run, or whose config is not trusted."""


RUN_OUTPUTS = (RUN_CONFIG, ADAPTER_DIR, CHECKPOINT_DIR, PREDICTIONS, METRICS, DEV_HISTORY, UNTRAINED_DIR)  # train.py's


def check_new_run_folder(folder: Path) -> None:
    """Refuse to train into ``folder`` when a run already wrote there: its adapter and config would
    be replaced and its old metrics left beside them, read as the new run's (Hydra's own ``.hydra/``
    and log, written as every job starts, do not count)."""
    found = [name for name in RUN_OUTPUTS if (folder / name).exists()]
    if found:
        raise RunFolderError(
            f"{folder} already holds a training run ({', '.join(found)}): continue it with trainer.resume=true "
            f"(the same overrides and hydra.run.dir={folder}), or train into a new folder (leave hydra.run.dir "
            "out, or name one that does not exist)"
        )


def unreadable_file(path: Path) -> str | None:
    """Why a checkpoint file cannot be loaded (missing, truncated, not its format), or None.
    Reads headers only: safetensors' header, the zip directory of ``torch.save`` files, JSON."""
    if not path.is_file():
        return f"{path.name} is missing"
    try:
        if path.suffix == ".safetensors":
            with safe_open(str(path), framework="pt"):
                pass
        elif path.suffix in (".pt", ".pth", ".bin"):
            if not zipfile.is_zipfile(path):
                return f"{path.name} is not a complete torch.save file"
        elif path.suffix == ".json":
            json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, SafetensorError) as error:
        return f"{path.name} is unreadable ({error})"
    return None


MAX_CONFIG_BYTES = 1_000_000  # a resolved run config is a few kB
MAX_CONFIG_DEPTH = 32  # and a few levels deep


def read_config_yaml(path: Path) -> Any:
    """A run's YAML config, bounded before it is built: at most :data:`MAX_CONFIG_BYTES`, nested at
    most :data:`MAX_CONFIG_DEPTH` deep, and no aliases (train.py writes none; an alias bomb would
    expand into billions of nodes, a self-referencing anchor into an endless loop). Scanning the
    parser's events costs time linear in the file, whatever its aliases would expand to."""
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise RunFolderError(f"{path}: {path.stat().st_size:,} bytes; a run's config is at most {MAX_CONFIG_BYTES:,}")
    try:
        text = path.read_text(encoding="utf-8")
        depth = 0
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent):
                raise RunFolderError(f"{path}: a YAML alias (*{event.anchor}); a run's config has none")
            depth += isinstance(event, yaml.CollectionStartEvent) - isinstance(event, yaml.CollectionEndEvent)
            if depth > MAX_CONFIG_DEPTH:
                raise RunFolderError(f"{path}: nested over {MAX_CONFIG_DEPTH} levels deep; not a run's config")
        return yaml.safe_load(text)
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise RunFolderError(f"{path}: not readable YAML ({error})") from error


def walk(node: Any, where: str = "") -> Iterator[tuple[str, str, Any]]:
    """(dotted path, key, value) of every key in a nested config, lists included."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        path = f"{where}.{key}".lstrip(".")
        yield path, str(key), value
        yield from walk(value, path)


def config_targets(conf_dir: Path, groups: Iterable[str]) -> frozenset[str]:
    """Every ``_target_`` that the YAML files of these config groups (nested groups too) name."""
    targets = set()
    for group in groups:
        for path in sorted((conf_dir / group).rglob("*.yaml")):
            node = yaml.safe_load(path.read_text(encoding="utf-8"))
            targets |= {value for _, key, value in walk(node) if key == TARGET}
    return frozenset(targets)


def read_run(folder: Path, trust_remote_code: bool = False) -> dict[str, Any]:
    """A run folder's :data:`RUN_GROUPS` and :data:`OPTIONAL_GROUPS`, read by :func:`read_run_config`
    with the targets of apa's own config groups for them as the only ones allowed."""
    allowed = config_targets(CONF_DIR, (*RUN_GROUPS, *OPTIONAL_GROUPS))
    return read_run_config(folder, RUN_GROUPS, allowed, trust_remote_code, OPTIONAL_GROUPS)


def read_run_config(
    folder: Path,
    groups: Iterable[str],
    allowed: frozenset[str],
    trust_remote_code: bool = False,
    optional: Iterable[str] = (),
) -> dict[str, Any]:
    """The ``groups`` (and ``optional`` groups, which may be null) of a training run's resolved
    config, once the folder is known to be a finished run (config and adapter readable) and those
    groups are known to name only ``allowed`` targets and, unless ``trust_remote_code``, no remote
    code."""
    groups = list(groups)
    config_file, config = _finished_run(folder, groups)
    used = {group: config.get(group) for group in [*groups, *optional]}
    _check_trusted(used, config_file, allowed, trust_remote_code)
    return used


def _finished_run(folder: Path, groups: list[str]) -> tuple[Path, dict[str, Any]]:
    expected = f"expected a folder train.py wrote, with {RUN_CONFIG} and {ADAPTER_DIR}/"
    if not folder.is_dir():
        raise RunFolderError(f"checkpoint={folder}: no such folder ({expected})")
    config_file = folder / RUN_CONFIG
    if not config_file.is_file():
        unfinished = (folder / CHECKPOINT_DIR).is_dir()
        hint = f"; finish it with trainer.resume=true hydra.run.dir={folder}" if unfinished else ""
        raise RunFolderError(f"checkpoint={folder}: not a finished training run, no {RUN_CONFIG} ({expected}){hint}")
    config = read_config_yaml(config_file)
    if not isinstance(config, dict) or not all(isinstance(config.get(g), dict) for g in groups):
        raise RunFolderError(f"{config_file}: not a training run's config (expected the groups {', '.join(groups)})")
    for name in (ADAPTER_CONFIG, ADAPTER_WEIGHTS):
        why = unreadable_file(folder / ADAPTER_DIR / name)
        if why:
            raise RunFolderError(f"checkpoint={folder}: {ADAPTER_DIR}/{why} ({expected})")
    return config_file, config


def _check_trusted(used: dict[str, Any], config_file: Path, allowed: frozenset[str], trust_remote_code: bool) -> None:
    interpolated = [path for path, _, value in walk(used) if isinstance(value, str) and "${" in value]
    if interpolated:  # train.py writes the config resolved; an interpolation could build any node
        raise RunFolderError(f"{config_file}: interpolations in {', '.join(interpolated)} (a run's config is resolved)")
    refused = [
        f"{path}={value!r}"
        for path, key, value in walk(used)
        if key == TARGET and not (isinstance(value, str) and value in allowed)
    ]
    if refused:
        raise RunFolderError(
            f"{config_file} names targets that apa's config groups do not ({', '.join(refused)}); "
            "refused: a run folder cannot choose what code runs"
        )
    remote = [path for path, key, value in walk(used) if key == REMOTE_CODE and value is not False]
    if remote and not trust_remote_code:
        raise RunFolderError(
            f"{config_file} sets {', '.join(remote)}: a run folder cannot ask to run a model repository's "
            "code; add trust_remote_code=true to the command line if you trust it"
        )
