"""Cluster jobs on a live single-node SLURM cluster (tests/slurm_cluster.py).

One small sweep (relu and tanh at seed 0 on the 320-image fake CIFAR-10)
serves every test: it runs once with the local executor as the reference, once
as a SLURM job array with one task preempted mid-training, and its relu run
once more through scripts/cluster/slurm_lenet5.sbatch, signalled the way
`--signal=B:TERM@...` signals. The `srun -n 2` run is compared with the
2-process loopback run of tests/test_distributed.py.
"""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest
from conftest import ROOT, python_env, two_process_args
from test_sweep import small_overrides, sweep_command

from actlab import train, writers

RUNS = ("relu/seed_0", "tanh/seed_0")
# 32 steps an epoch, 2 epochs, a checkpoint every 3 steps: the saves pace the
# run so that a signal sent at its first checkpoint arrives mid-training.
EPOCHS, STEPS_PER_EPOCH = 2, 256 // 8
FIELDS = dict(
  train_split="train[:256]",
  eval_split="train[256:]",
  num_epochs=EPOCHS,
  checkpoint_every_steps=3,
  log_every_steps=5,
)
# Wall-clock fields of the metrics; everything else must match bit for bit.
TIMINGS = ("seconds", "ms_per_step", "checkpoint_seconds")
JOB_TIMEOUT_S = 400


def _job_env(cluster, **extra) -> dict[str, str]:
  """The tests' subprocess environment, plus this cluster and this Python on PATH."""
  env = python_env(**extra)
  env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
  return cluster.env(env)


def _wait_for(predicate, what: str, timeout: float = JOB_TIMEOUT_S) -> None:
  deadline = time.monotonic() + timeout
  while not predicate():
    if time.monotonic() > deadline:
      pytest.fail(f"timed out waiting for {what}")
    time.sleep(0.05)


def _mid_training(workdir: Path) -> bool:
  """A checkpoint is on disk: the run is training and can save on a signal."""
  return any(p.name.isdigit() for p in (workdir / "checkpoints").glob("[0-9]*"))


def _requeued(cluster, job_id: str) -> bool:
  """Once the job is pending again, releases it from SLURM's requeue delay."""
  job = cluster.job(job_id)
  if job["JobState"] != "PENDING" or job["Restarts"] == "0":
    return False
  # A requeued job waits ~2 minutes (its begin time) before it may start
  # again. Not released at once: slurmd refuses a launch whose credential
  # dates from the second the old one was revoked in ("Job credential revoked").
  time.sleep(2)
  cluster.run("scontrol", "update", f"jobid={job_id}", "StartTime=now")
  return True


def _preempted_then_resumed(workdir: Path) -> int:
  """The step a SIGTERM stopped the run at (its save is checked by the caller,
  in the restart's "Resuming from checkpoint" line)."""
  (preempted,) = [r for r in writers.read_metrics(workdir) if r["split"] == "preempted"]
  assert preempted["signal"] == "SIGTERM"
  assert 0 < preempted["step"] < EPOCHS * STEPS_PER_EPOCH, preempted
  return preempted["step"]


def _records(workdir: Path, skip: tuple[str, ...] = ()) -> list[dict]:
  """The metrics records but `skip`'s splits, without their wall-clock fields;
  of a (split, step) logged twice (after a restart), the latest."""
  latest = {
    (r["split"], r["step"]): {k: v for k, v in r.items() if k not in TIMINGS}
    for r in writers.read_metrics(workdir)
    if r["split"] not in skip
  }
  return sorted(latest.values(), key=lambda r: (r["step"], r["split"]))


def _same_training(workdir: Path, reference: Path) -> None:
  """Metrics and final parameters bit-identical to the reference run's.

  A preempted run logs a `preempted` record and closes its logging interval
  at the step it stopped at, so its `train_interval` records average other
  spans of steps; its epoch, eval and test records must be the same.
  """
  preempted = any(r["split"] == "preempted" for r in writers.read_metrics(workdir))
  skip = ("preempted", "train_interval") if preempted else ()
  assert _records(workdir, skip) == _records(reference, skip)
  ours, theirs = train.restore_run(workdir)[1], train.restore_run(reference)[1]
  assert int(ours.step) == int(theirs.step) == EPOCHS * STEPS_PER_EPOCH
  jax.tree.map(np.testing.assert_array_equal, ours.params, theirs.params)
  jax.tree.map(np.testing.assert_array_equal, ours.opt_state, theirs.opt_state)


@pytest.fixture(scope="module")
def local_sweep(fake_cifar10_large, tmp_path_factory) -> Path:
  """The sweep with the local executor: the reference of every live run.

  One worker, so it is not pinned to a core: pinned workers run XLA
  single-threaded, which sums in another order than the unpinned processes
  of the SLURM node (TaskPlugin=task/none binds none).
  """
  data_dir, _ = fake_cifar10_large
  sweep_dir = tmp_path_factory.mktemp("local") / "sweep"
  out = subprocess.run(
    sweep_command(sweep_dir, data_dir, workers=1, seeds="1", **FIELDS),
    cwd=ROOT,
    env=python_env(),
    capture_output=True,
    text=True,
    timeout=JOB_TIMEOUT_S,
  )
  assert out.returncode == 0, out.stdout + out.stderr
  return sweep_dir


@pytest.fixture(scope="module")
def slurm_sweep(slurm_cluster, fake_cifar10_large, tmp_path_factory):
  """The sweep as a submitted job array; task 0 is requeued mid-training.

  Returns (sweep folder, the array's tasks as `scontrol show job` reports them).
  """
  data_dir, _ = fake_cifar10_large
  sweep_dir = tmp_path_factory.mktemp("slurm_sweep") / "sweep"
  out = subprocess.run(
    [
      *sweep_command(sweep_dir, data_dir, workers=1, seeds="1", **FIELDS),
      "--launcher=slurm",
      "--submit",
      # Requeued tasks append to their output: the first attempt's stays.
      "--sbatch=--open-mode=append",
    ],
    cwd=ROOT,
    env=_job_env(slurm_cluster),
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert out.returncode == 0, out.stdout + out.stderr
  job_id = re.search(r"Submitted batch job (\d+)", out.stdout).group(1)
  # Preemption as SLURM does it: SIGTERM to every process of the task, which
  # goes back to the queue.
  _wait_for(lambda: _mid_training(sweep_dir / RUNS[0]), "a checkpoint of task 0")
  slurm_cluster.run("scontrol", "requeue", f"{job_id}_0")
  _wait_for(lambda: _requeued(slurm_cluster, f"{job_id}_0"), "task 0 to be requeued")
  return sweep_dir, slurm_cluster.wait_done(job_id, JOB_TIMEOUT_S)


def test_sweep_array_runs_every_task_as_the_local_executor_does(slurm_sweep, local_sweep):
  sweep_dir, tasks = slurm_sweep
  assert sorted(t["ArrayTaskId"] for t in tasks) == ["0", "1"]
  assert all((t["JobState"], t["ExitCode"]) == ("COMPLETED", "0:0") for t in tasks), tasks
  for name in RUNS:
    assert (sweep_dir / name / "done.json").exists(), name
    _same_training(sweep_dir / name, local_sweep / name)


def test_a_requeued_array_task_saves_stops_and_resumes_bit_identically(slurm_sweep):
  sweep_dir, tasks = slurm_sweep
  restarts = {t["ArrayTaskId"]: t["Restarts"] for t in tasks}
  assert restarts == {"0": "1", "1": "0"}
  step = _preempted_then_resumed(sweep_dir / RUNS[0])
  (log,) = (sweep_dir / "slurm").glob("*_0.out")
  text = log.read_text()
  # The first attempt saved at the step it stopped at (the preempted exit),
  # and the second started there.
  _, second = text.split("Stopped by SIGTERM", 1)
  assert f"after step {step}" in second.splitlines()[0], text[-3000:]
  assert f"Resuming from checkpoint {step}" in second, text[-3000:]
  # The bit-identity to the uninterrupted local run is the test above.


def test_lenet5_sbatch_passes_a_batch_shell_term_to_training(
  slurm_cluster, fake_cifar10_large, local_sweep, tmp_path
):
  data_dir, _ = fake_cifar10_large
  workdir = tmp_path / "lenet5"
  # The sweep's relu/seed_0 run, on one CPU device (as the sweep's worker),
  # in float32 (the script's own default is bfloat16, for GPUs).
  args = [f"--config.{k}={v}" for k, v in small_overrides(data_dir, **FIELDS).items()]
  out = slurm_cluster.run(
    "sbatch",
    "--parsable",
    "--nodes=1",
    "--gpus-per-node=0",
    "--cpus-per-task=1",
    f"--output={tmp_path}/%j.out",
    str(ROOT / "scripts/cluster/slurm_lenet5.sbatch"),
    *args,
    "--config.model.dtype=float32",
    "--cpu_devices=1",
    cwd=ROOT,
    env=_job_env(slurm_cluster, WORKDIR=str(workdir), DATA_DIR=str(data_dir)),
  )
  job_id = out.stdout.strip()
  _wait_for(lambda: _mid_training(workdir), "a checkpoint of the sbatch run")
  # What --signal=B:TERM@... does at its time: TERM to the batch shell only.
  slurm_cluster.run("scancel", "--batch", "--signal=TERM", job_id)
  _wait_for(lambda: _requeued(slurm_cluster, job_id), "the script to requeue its job")
  (job,) = slurm_cluster.wait_done(job_id, JOB_TIMEOUT_S)
  assert (job["JobState"], job["ExitCode"], job["Restarts"]) == ("COMPLETED", "0:0", "1"), job
  step = _preempted_then_resumed(workdir)
  text = (tmp_path / f"{job_id}.out").read_text()
  assert f"Resuming from checkpoint {step}" in text, text[-3000:]
  _same_training(workdir, local_sweep / RUNS[0])


def test_srun_two_tasks_join_through_slurm_and_match_the_loopback_run(
  slurm_cluster, fake_cifar10_large, two_process_run, tmp_path
):
  data_dir, _ = fake_cifar10_large
  workdir = tmp_path / "srun"
  out = slurm_cluster.run(
    "srun",
    "-n",
    "2",
    "--kill-on-bad-exit=1",
    sys.executable,
    *two_process_args(data_dir, workdir, epochs=2),
    cwd=ROOT,
    env=_job_env(slurm_cluster, JAX_NUM_CPU_DEVICES="2"),
    timeout=JOB_TIMEOUT_S,
  )
  # No coordinator flags: JAX found 2 processes of 2 devices in SLURM's
  # environment; only process 0 prints.
  assert out.stdout.count("JAX devices: 4 cpu") == 1, out.stdout + out.stderr
  loopback, _ = two_process_run
  assert _records(workdir) == _records(loopback)
  ours, theirs = train.restore_run(workdir)[1], train.restore_run(loopback)[1]
  jax.tree.map(np.testing.assert_array_equal, ours.params, theirs.params)
