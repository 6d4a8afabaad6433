#!/bin/bash
# Preprocess a corpus as a SLURM job array: array task I of N shards slice I/N; the last
# task to finish merges the slices into manifest.json.
#
#   sbatch --array=0-15 slurm/preprocess.sh SOURCE INPUT OUTPUT [python -m preprocess options]
#
# The input is walked once: the first task to start writes OUTPUT/listing.jsonl (the others
# wait for it on a file lock) and every task reads its chunks from that listing. A listing
# made beforehand (python -m preprocess list SOURCE INPUT LISTING) is used when passed as
# --listing LISTING. Array indices must run 0..N-1. A rerun of the same command skips
# finished shards. To merge in a separate step instead:
# sbatch --dependency=afterok:JOBID --wrap "python -m preprocess merge OUTPUT"
#SBATCH --job-name=ecgdist-preprocess
#SBATCH --array=0-3
#SBATCH --cpus-per-task=4
#SBATCH --output=%x-%A_%a.out
set -euo pipefail
python=${ECGDIST_PYTHON:-python3}
source=$1 input=$2 output=$3
shift 3
"$python" -m preprocess "$source" "$input" "$output" --listing "$output/listing.jsonl" "$@" \
    --workers "${SLURM_CPUS_PER_TASK:-1}" --slice "${SLURM_ARRAY_TASK_ID:-0}/${SLURM_ARRAY_TASK_COUNT:-1}" --quiet
# Each task writes all its parts before trying, so the last finisher always merges. Exit 3
# means other slices are still running; any other failure fails this task with its message.
status=0
"$python" -m preprocess merge "$output" >/dev/null || status=$?
case $status in
    0) echo "merged $output" ;;
    3) echo "merge deferred: other slices still running" ;;
    *) echo "merge of $output failed (exit $status): see the error above" >&2; exit "$status" ;;
esac
