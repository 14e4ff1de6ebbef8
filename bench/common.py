"""What every benchmark shares: composing the project's configs, repeated measurements, the
machine, child processes for memory. The tests compose their configs here too (bench never
imports the tests)."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict

ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = ROOT / "conf"


def compose_config(name: str, overrides: list[str] = (), return_hydra_config: bool = False) -> DictConfig:
    """``conf/<name>.yaml`` composed with overrides (interpolations to Hydra's run dir unresolved;
    ``return_hydra_config`` keeps Hydra's own node)."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name=name, overrides=list(overrides), return_hydra_config=return_hydra_config)
    GlobalHydra.instance().clear()
    return cfg


def compose_run(name: str, overrides: list[str], run_dir: Path) -> DictConfig:
    """``conf/<name>.yaml`` composed as ``python <name>.py`` would compose it, with its run folder at
    ``run_dir``: Hydra's runtime config is set, so :func:`apa.jobs.train_job` or ``evaluate_job``
    takes the result (the job's config, Hydra's own node left out)."""
    cfg = compose_config(name, overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(run_dir)
    HydraConfig.instance().set_config(cfg)
    return OmegaConf.masked_copy(cfg, [key for key in cfg if key != "hydra"])


def measure(run: Callable[[], float | dict], repeats: int) -> dict:
    """Run ``repeats`` times; a run returns a number (or a dict of numbers): median and spread."""
    samples = [run() for _ in range(repeats)]
    if isinstance(samples[0], dict):
        return {key: summary([s[key] for s in samples]) for key in samples[0]}
    return summary(samples)


def summary(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def timed(run: Callable[[], object]) -> float:
    """Seconds ``run`` takes, its GPU work included (CUDA runs asynchronously: waited for on both sides)."""
    synchronize()
    start = time.perf_counter()
    run()
    synchronize()
    return time.perf_counter() - start


def synchronize() -> None:
    torch = sys.modules.get("torch")  # benchmarks that never import torch do not load it here
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def child(module: str, *arguments: str) -> dict:
    """Run ``python -m module arguments`` in a fresh process; it prints one JSON line last. Peak
    memory is the child's own (``ru_maxrss``), so runs do not share or inherit memory."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled"}
    result = subprocess.run(
        [sys.executable, "-m", module, *arguments], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"{module} {' '.join(arguments)} failed:\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def machine() -> dict:
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    cpu = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), platform.processor())
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def replace_section(report: Path, name: str, body: str) -> None:
    """Rewrite what lies between ``<!-- name:start -->`` and ``<!-- name:end -->`` in ``report``
    (the markers are appended when missing); the rest of the file is left as it is."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    text = report.read_text(encoding="utf-8") if report.is_file() else "# Benchmarks\n"
    if start not in text:
        text = text.rstrip("\n") + f"\n\n{start}\n{end}\n"
    before, _, rest = text.partition(start)
    _, _, after = rest.partition(end)
    report.write_text(f"{before}{start}\n{body.strip()}\n{end}{after}", encoding="utf-8")
