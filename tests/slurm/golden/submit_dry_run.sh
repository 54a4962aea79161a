#!/bin/bash

# Parameters
#SBATCH --account=proj
#SBATCH --constraint=a100
#SBATCH --cpus-per-task=8
#SBATCH --exclusive
#SBATCH --gpus-per-node=4
#SBATCH --job-name=tune-a100
#SBATCH --no-kill
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=4
#SBATCH --open-mode=append
#SBATCH --output=<tmp>/runs/tune/slurm/%j_0_log.out
#SBATCH --partition=gpu
#SBATCH --qos=high
#SBATCH --requeue
#SBATCH --signal=USR2@120
#SBATCH --time=04:00:00

# setup
# each rank runs (submitit calls it): hpctune run <tmp>/tune.yaml --resume --max-requeues 50 --stop-before 120
module load cuda/12.4
export SLURM_NTASKS=$((SLURM_JOB_NUM_NODES * SLURM_NTASKS_PER_NODE)) SLURM_NPROCS=$((SLURM_JOB_NUM_NODES * SLURM_NTASKS_PER_NODE))
srun --nodes=$SLURM_JOB_NUM_NODES --ntasks=$SLURM_JOB_NUM_NODES --ntasks-per-node=1 --mpi=none <python> -m hpctune.slurm.job clear-mpich-shm
<python> -m hpctune.slurm.node_loss start-guards <tmp>/runs/tune/slurm/%j_guard_%N.out
export HPCTUNE_RANKS_STARTED=$(date +%s) HPCTUNE_RANKS_RECORD=<tmp>/runs/tune/slurm.json

# command
export SUBMITIT_EXECUTOR=slurm
srun --unbuffered --output <tmp>/runs/tune/slurm/%j_%t_log.out --kill-on-bad-exit=1 --mpi=pmi2 <python> -u -m submitit.core._submit <tmp>/runs/tune/slurm


# teardown
<python> -m hpctune.slurm.node_loss relaunch $? -- srun --unbuffered --output <tmp>/runs/tune/slurm/%j_%t_log.out --kill-on-bad-exit=1 --mpi=pmi2 <python> -u -m submitit.core._submit <tmp>/runs/tune/slurm