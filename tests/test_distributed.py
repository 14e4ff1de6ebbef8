"""SLURM's tasks form one process group: their variables become the ranks torch.distributed reads."""

import os
import socket
import subprocess
import sys

from apa.distributed import join_slurm_tasks

from .helpers import PROJECT_ROOT

JOIN_AND_SUM = """
import os, torch, torch.distributed as dist
from apa.distributed import join_slurm_tasks
assert join_slurm_tasks()
dist.init_process_group("gloo")
total = torch.tensor([dist.get_rank() + 1])
dist.all_reduce(total)
print(os.environ["RANK"], os.environ["LOCAL_RANK"], os.environ["WORLD_SIZE"], os.environ["MASTER_ADDR"], int(total))
dist.destroy_process_group()
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def slurm_task(task: int, tasks: int, port: int) -> dict[str, str]:
    """The variables srun gives task ``task`` of a one-node job step (and no launcher's)."""
    environment = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    return environment | {
        "SLURM_JOB_ID": "4242",
        "SLURM_NTASKS": str(tasks),
        "SLURM_PROCID": str(task),
        "SLURM_LOCALID": str(task),
        "SLURM_NODEID": "0",
        "SLURM_JOB_NUM_NODES": "1",
        "SLURM_JOB_NODELIST": "127.0.0.1",
        "MASTER_PORT": str(port),
    }


def test_two_slurm_tasks_form_one_process_group():
    port = free_port()
    tasks = [
        subprocess.Popen(
            [sys.executable, "-c", JOIN_AND_SUM],
            env=slurm_task(task, 2, port),
            cwd=PROJECT_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for task in (0, 1)
    ]
    outputs = [task.communicate(timeout=120) for task in tasks]
    assert all(task.returncode == 0 for task in tasks), [err[-2000:] for _, err in outputs]
    assert [out.split() for out, _ in outputs] == [
        ["0", "0", "2", "127.0.0.1", "3"],  # rank 0 and rank 1 summed their 1 and 2 together
        ["1", "1", "2", "127.0.0.1", "3"],
    ]


def test_a_single_task_or_a_launchers_ranks_are_left_alone(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.setenv("SLURM_NTASKS", "1")
    assert not join_slurm_tasks() and "RANK" not in os.environ
    monkeypatch.setenv("SLURM_NTASKS", "2")
    monkeypatch.setenv("RANK", "1")  # torchrun inside the allocation already set it
    assert not join_slurm_tasks() and os.environ["RANK"] == "1"
