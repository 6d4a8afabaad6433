import json
import sys

import pytest
from slurm_jobs import sbatch, wait_for_job

from ecgdist.dist import read_dist_env, slurm_port


def test_torchrun_variables_take_precedence_over_slurm():
    env = {"RANK": "3", "WORLD_SIZE": "8", "LOCAL_RANK": "1", "MASTER_ADDR": "h1", "MASTER_PORT": "1234",
           "SLURM_STEP_ID": "0", "SLURM_PROCID": "0", "SLURM_JOB_NODELIST": "n1"}
    d = read_dist_env(env)
    assert (d.rank, d.world_size, d.local_rank, d.master_addr, d.master_port, d.launcher) == \
        (3, 8, 1, "h1", 1234, "torchrun")


def test_submitit_local_variables_are_read():
    d = read_dist_env({"SUBMITIT_LOCAL_GLOBALID": "1", "SUBMITIT_LOCAL_LOCALID": "1", "SUBMITIT_LOCAL_NTASKS": "2"})
    assert (d.rank, d.local_rank, d.world_size, d.launcher) == (1, 1, 2, "submitit-local")


def test_no_launcher_is_a_single_process():
    d = read_dist_env({})
    assert (d.rank, d.world_size, d.launcher, d.is_main) == (0, 1, "single", True)


def test_batch_script_outside_srun_is_not_mistaken_for_a_rank():
    # sbatch's batch step sets SLURM_PROCID but no SLURM_STEP_ID: it is not a task of srun.
    d = read_dist_env({"SLURM_PROCID": "0", "SLURM_JOB_NODELIST": "n[1-2]", "SLURM_JOB_ID": "7"})
    assert d.launcher == "single"


def test_slurm_port_depends_on_job_and_stays_in_range():
    assert slurm_port("1") != slurm_port("2")
    assert 20000 <= slurm_port("123456789") < 40000


@pytest.mark.slurm
def test_two_node_sbatch_allreduce_through_ecgdist_setup(slurm_cluster, tmp_path):
    script = tmp_path / "allreduce.sh"
    script.write_text(f"#!/bin/bash\nsrun {sys.executable} -m ecgdist.dist\n")
    job = sbatch("-N", "2", "--ntasks-per-node=1", "-o", str(tmp_path / "out-%j.txt"), str(script), cwd=tmp_path)
    assert wait_for_job(job, timeout_s=300) == "COMPLETED"
    lines = [json.loads(line) for line in (tmp_path / f"out-{job}.txt").read_text().splitlines()
             if line.startswith("{")]
    assert sorted(r["rank"] for r in lines) == [0, 1]
    assert {r["node"] for r in lines} == {"n1", "n2"}  # one task on each node
    assert all(r["allreduce_sum"] == 3.0 and r["world_size"] == 2 for r in lines)
    assert all(r["master_addr"] == "n1" and r["launcher"] == "slurm" for r in lines)
