"""Many devices and many hosts with JAX's own runtime.

One process per host; `initialize` joins them through `jax.distributed`.
Each process reads only its slice of the training split; the slices are
assembled into one global array and replicated onto every device once, so the
training loop (and its data order) is the same for 1 device or 1,000.
"""

from __future__ import annotations

import logging
import os

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

# Environment variables by which JAX's cluster auto-detection recognises a
# multi-process job (SLURM, Open MPI, TPU pod slices, Kubernetes JobSets).
_CLUSTER_SIZE_VARS = ("SLURM_NTASKS", "OMPI_COMM_WORLD_SIZE")
_CLUSTER_HINT_VARS = ("TPU_WORKER_HOSTNAMES", "JOBSET_NAME", "MEGASCALE_NUM_SLICES")


def in_cluster_job() -> bool:
  """True when the environment describes a job of more than one process."""
  for var in _CLUSTER_SIZE_VARS:
    if int(os.environ.get(var, "1") or 1) > 1:
      return True
  hosts = os.environ.get("TPU_WORKER_HOSTNAMES", "")
  return "," in hosts or any(os.environ.get(v) for v in _CLUSTER_HINT_VARS[1:])


def initialize(
  coordinator_address: str | None = None,
  num_processes: int | None = None,
  process_id: int | None = None,
) -> None:
  """Starts `jax.distributed` when this is one process of several.

  Explicit arguments win; otherwise JAX's auto-detection is used inside a
  recognised cluster job; a plain single-process run does nothing. On CPU
  the collectives go through gloo.
  """
  explicit = coordinator_address is not None or (num_processes or 1) > 1
  if not explicit and not in_cluster_job():
    return
  if "cpu" in (os.environ.get("JAX_PLATFORMS") or "cpu"):
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
  if explicit:
    if coordinator_address is None or num_processes is None or process_id is None:
      raise ValueError(
        "A multi-process run needs all of --coordinator_address,"
        " --num_processes and --process_id (or none, inside SLURM / a TPU pod"
        " / Kubernetes, where JAX detects them)."
      )
    jax.distributed.initialize(coordinator_address, num_processes, process_id)
  else:
    jax.distributed.initialize()
  logging.info(
    "Process %d of %d, %d local devices of %d.",
    jax.process_index(),
    jax.process_count(),
    jax.local_device_count(),
    jax.device_count(),
  )


# XLA:CPU trains a small model faster as a data-parallel mesh of one device
# per core than as one device multi-threaded over the same cores (LeNet5 on 2
# cores: 1.70x, docs/benchmarks.md). More devices than this split the batch
# thinner than has been measured.
MAX_AUTO_CPU_DEVICES = 8


def available_cores() -> list[int]:
  """The CPU cores this process may run on (empty where the OS does not say)."""
  return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []


def cpu_devices_for(batch_size: int, cores: int | None = None) -> int:
  """One CPU device per core, at most MAX_AUTO_CPU_DEVICES, dividing the batch."""
  if cores is None:
    cores = len(available_cores()) or os.cpu_count() or 1
  n = max(1, min(cores, MAX_AUTO_CPU_DEVICES))
  while batch_size % n:
    n -= 1
  return n


def use_cpu_cores(batch_size: int, devices: int | str = "auto") -> int:
  """Sets the number of JAX CPU devices of this process before JAX starts.

  `devices`: a count, or "auto" for `cpu_devices_for(batch_size)` (one per
  core the process may run on). Returns the count it set, or 0 when the
  count was already fixed and it changed nothing: by XLA_FLAGS'
  --xla_force_host_platform_device_count or jax_num_cpu_devices (for
  "auto"), by a multi-process job (for "auto"), or because JAX's backends
  have started. Only the CPU backend is affected; on a GPU or TPU host the
  accelerators stay the default devices, so the same command runs unchanged
  there.
  """
  forced = "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", "")
  if devices == "auto":
    if forced or jax.config.jax_num_cpu_devices != -1 or in_cluster_job():
      return 0
    devices = cpu_devices_for(batch_size)
  devices = int(devices)
  if devices < 1:
    raise ValueError(f"The number of CPU devices must be at least 1, got {devices}.")
  try:
    jax.config.update("jax_num_cpu_devices", devices)
  except RuntimeError:  # backends already started: the count is fixed
    return 0
  return devices


def is_lead() -> bool:
  """Process 0 writes logs, metrics and config files."""
  return jax.process_index() == 0


def local_value(x: jax.Array) -> np.ndarray:
  """The value of a replicated array, read from this process's own copy."""
  if isinstance(x, jax.Array) and not x.is_fully_addressable:
    return np.asarray(x.addressable_data(0))
  return np.asarray(x)


def replicate(x: np.ndarray, mesh: Mesh) -> jax.Array:
  """Puts a host array that every process holds in full onto every device."""
  return jax.make_array_from_process_local_data(NamedSharding(mesh, P()), x)


def replicate_slices(local: np.ndarray, mesh: Mesh) -> jax.Array:
  """Concatenates each process's slice, in process order, onto every device.

  The slices travel once, at start-up (an all-gather); afterwards the full
  array sits on each device and every step gathers its batch locally.
  """
  if jax.process_count() == 1:
    return replicate(local, mesh)
  usable = local.shape[0] - local.shape[0] % jax.local_device_count()
  if usable != local.shape[0]:
    logging.warning(
      "Dropping %d examples of this process's slice so it divides over its %d devices.",
      local.shape[0] - usable,
      jax.local_device_count(),
    )
  sharded = jax.make_array_from_process_local_data(NamedSharding(mesh, P("data")), local[:usable])
  return jax.jit(lambda a: a, out_shardings=NamedSharding(mesh, P()))(sharded)


def any_process(flag: bool) -> bool:
  """True on every process if `flag` is true on any (a blocking collective)."""
  if jax.process_count() == 1:
    return flag
  return bool(multihost_utils.process_allgather(np.array(flag)).any())
