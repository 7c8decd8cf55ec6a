#!/usr/bin/env bash
# Runs one rmkit data-parallel rank under SLURM: maps SLURM's task variables to the ones torchrun
# sets (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT) and execs the
# command. One task per rank:
#
#   #SBATCH --nodes=4 --ntasks-per-node=2 --cpus-per-task=16
#   srun scripts/rmkit-srun.sh ./build/rmkit train --model M --data D --output runs/x --batch-size 8
#
# MASTER_ADDR defaults to the first host of the allocation, MASTER_PORT to 29500 + (job id % 1000)
# (export either to override). GLOO_SOCKET_IFNAME (e.g. ib0, eth1) picks the network interface.
set -euo pipefail
if [[ -z "${SLURM_PROCID:-}" || -z "${SLURM_NTASKS:-}" ]]; then
  echo "rmkit-srun.sh: not inside a SLURM step (run it through srun)" >&2
  exit 2
fi
export RANK="$SLURM_PROCID"
export WORLD_SIZE="$SLURM_NTASKS"
export LOCAL_RANK="${SLURM_LOCALID:-0}"
if [[ -n "${SLURM_NTASKS_PER_NODE:-}" ]]; then
  LOCAL_WORLD_SIZE="${SLURM_NTASKS_PER_NODE%%(*}"     # "2(x4)" -> 2
elif [[ -n "${SLURM_STEP_TASKS_PER_NODE:-}" ]]; then
  LOCAL_WORLD_SIZE="${SLURM_STEP_TASKS_PER_NODE%%(*}"
else
  LOCAL_WORLD_SIZE=1
fi
export LOCAL_WORLD_SIZE="${LOCAL_WORLD_SIZE%%,*}"
if [[ -z "${MASTER_ADDR:-}" ]]; then
  MASTER_ADDR="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)"
  export MASTER_ADDR
fi
export MASTER_PORT="${MASTER_PORT:-$((29500 + ${SLURM_JOB_ID:-0} % 1000))}"
# threads: the task's CPUs unless the user chose (rmkit otherwise divides the machine's cores)
if [[ -z "${OMP_NUM_THREADS:-}" && -n "${SLURM_CPUS_PER_TASK:-}" ]]; then
  export OMP_NUM_THREADS="$SLURM_CPUS_PER_TASK"
fi
exec "$@"
