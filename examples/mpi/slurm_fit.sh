#!/bin/bash
# Slurm batch script: many-lens fitting (mpi_fit_catalogue) and, first, a
# sharded training set (mpi_simulate) on N nodes, one MPI rank per socket
# (CPU builds: OpenMP threads fill the socket) or one rank per GPU (CUDA
# builds).  Submit from the directory that holds the catalogue and the
# results (a shared file system):
#
#   sbatch --nodes=4 examples/mpi/slurm_fit.sh
#
# Both programs resume: if the job ends early (time limit, a node failure),
# submit it again and only the missing shards and lenses are done.
#
#SBATCH --job-name=lensing-fit
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=2        # one rank per socket (CPU) or per GPU
#SBATCH --cpus-per-task=16         # threads per rank (cores of one socket)
#SBATCH --time=02:00:00
#SBATCH --output=lensing-fit-%j.out
##SBATCH --gpus-per-task=1         # CUDA builds: one GPU per rank
set -euo pipefail

BIN="${LENSING_BIN:-./build/examples}"
export OMP_NUM_THREADS="${SLURM_CPUS_PER_TASK:-1}"
export OMP_PROC_BIND=spread OMP_PLACES=threads
# CUDA builds: each rank sees its own GPU (--gpus-per-task), Kokkos takes device 0.

# 1. A training set: shards of 4096 images; the master is train.h5.
srun --cpu-bind=cores "$BIN/mpi_simulate" --n 1000000 --size 64 --shard 4096 --out sets/train

# 2. The catalogue: catalogue/images.npy (n, ny, nx) and catalogue/noise.npy.
#    Lenses go to free ranks one at a time; results in fits/, table in table.csv.
#    On clusters whose MPI runs over plain TCP (no RDMA), add --rank0-serves.
srun --cpu-bind=cores "$BIN/mpi_fit_catalogue" --catalogue catalogue --work fits --table table.csv --starts 8
