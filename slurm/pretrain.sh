#!/bin/bash
# Pre-train across nodes with DeepSpeed ZeRO: one task per GPU (per CPU slot without GPUs),
# rank layout from SLURM, rendezvous at the first node. No ssh, no pdsh.
#
#   sbatch [--nodes=N --ntasks-per-node=G --gpus-per-node=G ...] slurm/pretrain.sh CONFIG [key=value ...]
#
# Two minutes before the time limit every rank gets SIGUSR1 (--signal below), saves within
# train.agree_every_steps steps, and rank 0 requeues the job. On preemption or scancel SLURM sends
# SIGTERM: the ranks save and stop, and requeueing is SLURM's own (partition policy), never
# doubled. A requeued job resumes from the newest checkpoint in run.dir by itself.
#SBATCH --job-name=ecgdist-pretrain
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=1
#SBATCH --signal=USR1@120
#SBATCH --requeue
#SBATCH --open-mode=append
#SBATCH --output=%x-%j.out
set -euo pipefail
python=${ECGDIST_PYTHON:-python3}
export MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
export MASTER_PORT=${MASTER_PORT:-$((20000 + SLURM_JOB_ID % 20000))}
echo "job $SLURM_JOB_ID (restart ${SLURM_RESTART_COUNT:-0}): $SLURM_NTASKS tasks on $SLURM_JOB_NODELIST, master $MASTER_ADDR:$MASTER_PORT"
# A rank that dies takes the whole step down at once instead of leaving its peers waiting.
srun --kill-on-bad-exit=1 "$python" -m ecgdist.pretrain "$@"
