"""Processes of one training job: SLURM's tasks made into the ranks torch.distributed expects.

torchrun and ``accelerate launch`` export ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and
``MASTER_PORT``; a SLURM job step with several tasks (``hydra/launcher=slurm`` with
``tasks_per_node`` = GPUs) exports only ``SLURM_PROCID``, ``SLURM_LOCALID``, ``SLURM_NTASKS`` and its
node list, so each task would train alone on the first GPU. :func:`join_slurm_tasks` maps the one
to the other as submitit's ``TorchDistributedEnvironment`` does (the first node is the master; the
port comes from ``MASTER_PORT``, else from the job id, the same in every task), reading SLURM's
variables with submitit's parser whether submitit or a plain ``srun`` started the task.

This module imports nothing of apa's, so that every layer may use it.
"""

from __future__ import annotations

import logging
import os
import random

log = logging.getLogger(__name__)


def join_slurm_tasks() -> bool:
    """Export the process-group variables from SLURM's when this is one of several SLURM tasks and
    no launcher has set them (whether submitit or ``srun`` started it); returns whether it did."""
    if int(os.environ.get("SLURM_NTASKS", "1")) <= 1 or "RANK" in os.environ:
        return False
    from submitit.slurm.slurm import SlurmJobEnvironment  # reads SLURM's variables, parses its node list

    job = SlurmJobEnvironment()
    port = os.environ.get("MASTER_PORT") or str(random.Random(job.job_id).randint(20_000, 60_000))
    os.environ.update(
        MASTER_ADDR=job.hostnames[0],  # the first node of the job hosts the rendezvous
        MASTER_PORT=port,  # the same in every task: given, or drawn from the job id
        RANK=str(job.global_rank),
        WORLD_SIZE=str(job.num_tasks),
        LOCAL_RANK=str(job.local_rank),  # the Trainer takes cuda:LOCAL_RANK among the visible GPUs
        LOCAL_WORLD_SIZE=str(job.num_tasks // job.num_nodes),
    )
    log.info(
        "SLURM task %d of %d joins the process group at %s:%s", job.global_rank, job.num_tasks, job.hostnames[0], port
    )
    return True
