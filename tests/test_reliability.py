"""Faults a research run meets: kills, preemption, divergence, bad disks, races."""

import errno
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest
from conftest import ROOT, experiment_args, field_path, python_env, run_python
from test_train import small_config

from actlab import build, checkpoint, faults, steps, train, writers
from actlab.workdir import WorkdirError, WorkdirLock

STEPS_PER_EPOCH = 320 // 8  # fake_cifar10_large, batch 8
EPOCHS = 12


def _cli(data_dir, workdir, *extra):
  fields = dict(batch_size=8, num_epochs=EPOCHS, checkpoint_every_steps=7, log_every_steps=5)
  return [*experiment_args(data_dir, workdir, **fields), *extra]


def _start(args):
  return subprocess.Popen(
    [sys.executable, *args],
    cwd=ROOT,
    env=python_env(),
    stdout=subprocess.PIPE,
    stderr=subprocess.PIPE,
    text=True,
  )


def _wait_for(predicate, proc, timeout=400):
  end = time.monotonic() + timeout
  while time.monotonic() < end:
    if predicate():
      return
    if proc.poll() is not None:
      pytest.fail(f"the run ended before the fault was injected:\n{proc.stderr.read()[-3000:]}")
    time.sleep(0.002)
  proc.kill()
  pytest.fail("timed out waiting for the run to make progress")


def _final_params(workdir):
  return train.restore_run(workdir)[1]


def _assert_same_params(a, b):
  jax.tree.map(np.testing.assert_array_equal, a.params, b.params)


@pytest.fixture(scope="module")
def reference(fake_cifar10_large, tmp_path_factory):
  """An uninterrupted run of the interrupted runs' config."""
  data_dir, _ = fake_cifar10_large
  wd = tmp_path_factory.mktemp("reference")
  out = run_python(*_cli(data_dir, wd))
  assert out.returncode == 0, out.stderr[-3000:]
  return _final_params(wd)


def test_sigkill_mid_epoch_then_rerun_is_bit_identical(fake_cifar10_large, reference, tmp_path):
  data_dir, _ = fake_cifar10_large
  wd = tmp_path / "wd"
  proc = _start(_cli(data_dir, wd))
  ckpts = wd / "checkpoints"

  def mid_epoch_checkpoint():
    done = [int(p.name) for p in ckpts.glob("[0-9]*") if p.name.isdigit()]
    return any(s > STEPS_PER_EPOCH and s % STEPS_PER_EPOCH for s in done)

  _wait_for(mid_epoch_checkpoint, proc)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  assert proc.returncode == -signal.SIGKILL
  assert not any(r["split"] == "eval" and r["epoch"] == EPOCHS for r in writers.read_metrics(wd))

  out = run_python(*_cli(data_dir, wd))  # same command; the lock died with the process
  assert out.returncode == 0, out.stderr[-3000:]
  assert "Resuming from checkpoint" in out.stderr
  _assert_same_params(_final_params(wd), reference)


def test_sigterm_saves_exits_75_and_the_rerun_resumes_there(
  fake_cifar10_large, reference, tmp_path
):
  data_dir, _ = fake_cifar10_large
  wd = tmp_path / "wd"
  proc = _start(_cli(data_dir, wd))
  metrics = wd / "metrics.jsonl"
  _wait_for(lambda: metrics.exists() and metrics.read_text().count("train_interval") >= 3, proc)
  proc.send_signal(signal.SIGTERM)
  _, err = proc.communicate(timeout=300)
  assert proc.returncode == faults.PREEMPTED_EXIT_CODE == 75, err[-3000:]
  (preempted,) = [r for r in writers.read_metrics(wd) if r["split"] == "preempted"]
  assert preempted["signal"] == "SIGTERM"
  assert f"Stopped by SIGTERM after step {preempted['step']}" in err
  assert checkpoint.Checkpoints(wd).latest_step() == preempted["step"]

  out = run_python(*_cli(data_dir, wd))
  assert out.returncode == 0, out.stderr[-3000:]
  assert f"Resuming from checkpoint {preempted['step']}" in out.stderr
  _assert_same_params(_final_params(wd), reference)


def _diverge(data_dir, wd, **overrides):
  """One good epoch, then a learning rate that overflows float32."""
  train.train_and_evaluate(small_config(data_dir), wd)
  return small_config(data_dir, **{"num_epochs": 2, "learning_rate": 1e35, **overrides})


def test_divergence_stop_names_step_and_keeps_last_good_checkpoint(fake_cifar10, tmp_path):
  data_dir, _ = fake_cifar10
  wd = tmp_path / "wd"
  bad = _diverge(data_dir, wd)
  good = _final_params(wd)
  with pytest.raises(faults.NonFiniteError) as err:
    train.train_and_evaluate(bad, wd, allow_config_change=True)
  msg = str(err.value)
  # Step 6 applies the huge update (its own loss was finite); step 7 overflows.
  assert "Non-finite loss at step 7" in msg and "nonfinite_policy='stop'" in msg
  assert "The last good checkpoint (step 5)" in msg
  assert checkpoint.Checkpoints(wd).latest_step() == 5
  restored = _final_params(wd)
  _assert_same_params(restored, good)
  assert all(np.isfinite(x).all() for x in jax.tree.leaves(restored.params))


def test_after_divergence_before_any_checkpoint_the_advised_rerun_is_accepted(
  fake_cifar10, tmp_path
):
  data_dir, _ = fake_cifar10
  wd = tmp_path / "wd"
  with pytest.raises(faults.NonFiniteError) as err:
    train.train_and_evaluate(small_config(data_dir, learning_rate=1e35), wd)
  assert "No checkpoint was saved yet" in str(err.value)
  assert "lower --config.optim.learning_rate" in str(err.value)
  state = train.train_and_evaluate(small_config(data_dir, learning_rate=1e-3), wd)
  assert int(state.step) == 5
  assert json.loads((wd / "config.json").read_text())["optim"]["learning_rate"] == 1e-3


def test_divergence_skip_counts_and_stops_after_consecutive_skips(fake_cifar10, tmp_path):
  data_dir, _ = fake_cifar10
  wd = tmp_path / "wd"
  bad = _diverge(data_dir, wd, nonfinite_policy="skip", max_consecutive_skips=6, num_epochs=4)
  with pytest.raises(faults.NonFiniteError, match="consecutive steps had a non-finite"):
    train.train_and_evaluate(bad, wd, allow_config_change=True)
  records = writers.read_metrics(wd)
  skipped = [r["skipped"] for r in records if r["split"] == "train_interval"]
  assert sum(skipped) >= 6
  # An epoch that skipped steps but did not hit the limit reports how many.
  epoch2 = [r for r in records if r["split"] == "train" and r["epoch"] == 2]
  assert epoch2 and epoch2[0]["skipped"] == 4  # steps 7-10 of 6-10


def test_skip_policy_stops_at_the_limit_between_logging_boundaries(fake_cifar10, tmp_path):
  """Steps 7, 8, 9 are non-finite; with a limit of 3 the run stops after step
  9, although the next logging boundary is step 10 (the epoch's end)."""
  data_dir, _ = fake_cifar10
  wd = tmp_path / "wd"
  bad = _diverge(data_dir, wd, nonfinite_policy="skip", max_consecutive_skips=3, log_every_steps=5)
  with pytest.raises(faults.NonFiniteError, match="^3 consecutive steps had a non-finite") as err:
    train.train_and_evaluate(bad, wd, allow_config_change=True)
  assert "3 skipped in all" in str(err.value)
  (last,) = [r for r in writers.read_metrics(wd) if r["split"] == "train_interval"][-1:]
  assert (last["step"], last["skipped"], last["max_consecutive_skips"]) == (9, 3, 3)


def test_skip_policy_leaves_params_untouched_on_nonfinite_batch():
  cfg = small_config(nonfinite_policy="skip")
  state = build.create_train_state(cfg, build.make_model(cfg), jax.random.key(0))
  x = np.full((8, 32, 32, 3), np.nan, np.float32)
  new, m = jax.jit(steps.train_step)(state, {"image": x, "label": np.zeros(8, np.int32)})
  _assert_same_params(new, state)
  assert int(new.skipped_steps) == 1 and int(new.first_nonfinite_step) == 1
  assert int(new.nonfinite_kind) == faults.NONFINITE_LOSS and float(m["count"]) == 0


def test_corrupt_latest_checkpoint_falls_back_to_previous(fake_cifar10, tmp_path, caplog):
  data_dir, _ = fake_cifar10
  wd = tmp_path / "wd"
  straight = train.train_and_evaluate(small_config(data_dir, num_epochs=3), tmp_path / "straight")
  train.train_and_evaluate(small_config(data_dir, num_epochs=2), wd)
  latest = wd / "checkpoints" / "10"
  for f in latest.rglob("*"):
    if f.is_file() and f.name not in ("commit_success.txt", "_CHECKPOINT_METADATA"):
      f.write_bytes(b"\0" * 7)
  resumed = train.train_and_evaluate(small_config(data_dir, num_epochs=3), wd)
  assert "Checkpoint 10" in caplog.text and "is unusable" in caplog.text
  assert "checkpoint 5" in caplog.text
  _assert_same_params(resumed, straight)


def test_killed_mid_save_leaves_a_temporary_folder_that_is_ignored(fake_cifar10, tmp_path):
  data_dir, _ = fake_cifar10
  wd = tmp_path / "wd"
  train.train_and_evaluate(small_config(data_dir), wd)
  partial = wd / "checkpoints" / "10.orbax-checkpoint-tmp-1795900000"
  (partial / "default").mkdir(parents=True)
  (partial / "default" / "manifest.ocdbt").write_bytes(b"\0\0")
  assert checkpoint.Checkpoints(wd).latest_step() == 5
  state = train.train_and_evaluate(small_config(data_dir, num_epochs=2), wd)
  assert int(state.step) == 10


def test_disk_full_on_save_is_reported_and_earlier_checkpoint_survives(
  fake_cifar10, tmp_path, monkeypatch
):
  data_dir, _ = fake_cifar10
  wd = tmp_path / "wd"
  real_save = ocp.CheckpointManager.save

  def save(self, step, *a, **k):
    if step > 5:
      raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    return real_save(self, step, *a, **k)

  monkeypatch.setattr(ocp.CheckpointManager, "save", save)
  with pytest.raises(checkpoint.CheckpointError) as err:
    train.train_and_evaluate(small_config(data_dir, num_epochs=3), wd)
  msg = str(err.value)
  assert "Could not save the checkpoint for step 10" in msg and "No space left" in msg
  assert "resumes from step 5" in msg
  monkeypatch.setattr(ocp.CheckpointManager, "save", real_save)
  assert checkpoint.Checkpoints(wd).latest_step() == 5
  state = train.train_and_evaluate(small_config(data_dir, num_epochs=3), wd)
  assert int(state.step) == 15


def test_disk_full_in_a_background_save_names_that_step(fake_cifar10, tmp_path, monkeypatch):
  """An async save fails after `save` returned: the error surfaces later and
  must name the step whose save failed and the step a rerun resumes from."""
  data_dir, _ = fake_cifar10
  wd = tmp_path / "wd"
  real_save, real_wait = ocp.CheckpointManager.save, ocp.CheckpointManager.wait_until_finished
  failing = []

  def save(self, step, *a, **k):
    if step > 5:
      failing.append(step)  # the write "starts" and fails in the background
      return True
    return real_save(self, step, *a, **k)

  def wait(self):
    if failing:
      failing.clear()
      raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    return real_wait(self)

  monkeypatch.setattr(ocp.CheckpointManager, "save", save)
  monkeypatch.setattr(ocp.CheckpointManager, "wait_until_finished", wait)
  with pytest.raises(checkpoint.CheckpointError) as err:
    train.train_and_evaluate(small_config(data_dir, num_epochs=3), wd)
  msg = str(err.value)
  assert "Could not save the checkpoint for step 10" in msg and "resumes from step 5" in msg


def test_config_mismatch_is_refused_with_a_diff(fake_cifar10, tmp_path):
  data_dir, _ = fake_cifar10
  wd = tmp_path / "wd"
  train.train_and_evaluate(small_config(data_dir), wd)
  before = (wd / "config.json").read_text()
  changed = small_config(data_dir, num_epochs=2, activation="tanh", learning_rate=3e-4)
  with pytest.raises(WorkdirError) as err:
    train.train_and_evaluate(changed, wd)
  msg = str(err.value)
  assert "activation: 'relu' -> 'tanh'" in msg and "learning_rate: 0.001 -> 0.0003" in msg
  assert "num_epochs" not in msg  # training longer is a legitimate continuation
  assert "--allow_config_change" in msg
  assert (wd / "config.json").read_text() == before
  state = train.train_and_evaluate(changed, wd, allow_config_change=True)
  assert int(state.epoch) == 2
  assert json.loads((wd / "config.json").read_text())["model"]["activation"] == "tanh"


def test_concurrent_run_is_refused_and_the_lock_is_released(fake_cifar10, tmp_path):
  data_dir, _ = fake_cifar10
  wd = tmp_path / "wd"
  wd.mkdir()
  with WorkdirLock(wd):
    with pytest.raises(WorkdirError, match=f"Another run \\(pid {os.getpid()}\\) is using"):
      train.train_and_evaluate(small_config(data_dir), wd)
  train.train_and_evaluate(small_config(data_dir), wd)  # free again
  with pytest.raises(ValueError):  # an error inside the run releases it too
    train.train_and_evaluate(small_config(data_dir, batch_size=4096), wd)
  with WorkdirLock(wd):
    pass


def test_wrong_type_override_is_refused_before_anything_runs(tmp_path):
  out = run_python(
    "experiments/main.py",
    "--config=experiments/configs/lenet5_cifar10.py",
    f"--workdir={tmp_path / 'wd'}",
    "--config.batch_size=lots",
  )
  assert out.returncode != 0
  assert "batch_size" in out.stderr and "lots" in out.stderr
  assert not (tmp_path / "wd").exists()


# ----------------------------------------------------------------------------
# SIGTERM at any moment
# ----------------------------------------------------------------------------

# The smallest run with the same stages: a 24,674-parameter MLP (compiled,
# checkpointed and restored like LeNet5 but in a fraction of the time), 10
# steps an epoch, logs every step and a checkpoint every 2. One CPU device, so
# the command and a sweep worker compute the same run and share one reference.
_MOMENT_FIELDS = {
  "batch_size": 4,
  "num_epochs": 2,
  "log_every_steps": 1,
  "checkpoint_every_steps": 2,
  "model.name": "mlp",
  "model.mlp_depth": 1,
  "model.mlp_width": 8,
}
# Moments of a SIGTERM: (marker, seconds after it), spread over the reference
# run's own timeline (`_spread`) so they cover the same stages on a fast or a
# loaded machine. Markers: "handler" (the command's SIGTERM handler is in
# place, read from /proc), "" (the start: a worker starts with SIGTERM blocked,
# so even the interpreter's start-up is covered), or a line the process printed.
_MOMENTS = 21  # per command; the command's and the worker's chains run side by side


def _handler_installed(pid: int) -> bool:
  """Whether the process catches SIGTERM (its SigCgt mask, Linux)."""
  try:
    status = Path(f"/proc/{pid}/status").read_text()
  except OSError:
    return False
  mask = next(int(x.split()[1], 16) for x in status.splitlines() if x.startswith("SigCgt:"))
  return bool(mask & (1 << (signal.SIGTERM - 1)))


def _spread(first: str, t_first: float, t_params: float, t_epoch: float, n: int):
  """`n` moments: a third from `first` to "Total params", a third from there to
  the first epoch's line, a third through the first steps (0-0.5 s after it)."""
  k = n // 3
  between = [(first, (t_params - t_first) * j / k) for j in range(k)]
  compile_ = [("Total params", (t_epoch - t_params) * j / k) for j in range(k)]
  steps_ = [("Epoch", 0.5 * j / (n - 2 * k - 1 or 1)) for j in range(n - 2 * k)]
  return between + compile_ + steps_


class _Watched:
  """A started process whose stdout lines are collected as they come."""

  def __init__(self, argv, **popen):
    self.t0 = time.monotonic()
    self.proc = subprocess.Popen(
      argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen
    )
    self.lines: list[tuple[float, str]] = []
    self._handler_at: float | None = None
    self._reader = threading.Thread(target=self._read, daemon=True)
    self._reader.start()

  def _read(self):
    for line in self.proc.stdout:
      self.lines.append((time.monotonic(), line))

  def seen(self, marker: str) -> float | None:
    if not marker:
      return self.t0
    if marker == "handler":
      if self._handler_at is None and _handler_installed(self.proc.pid):
        self._handler_at = time.monotonic()
      return self._handler_at
    return next((t for t, line in self.lines if marker in line), None)

  def finish(self, timeout=300) -> tuple[int, str]:
    code = self.proc.wait(timeout=timeout)
    self._reader.join(timeout=10)
    return code, "".join(line for _, line in self.lines)


def _sigterm_at(start, marker: str, delay: float) -> tuple[int, str]:
  """Starts a process, sends SIGTERM `delay` s after it reached `marker`."""
  w = start()
  while w.seen(marker) is None and w.proc.poll() is None:
    time.sleep(0.002)
  t = w.seen(marker)
  if t is not None:
    time.sleep(max(0.0, t + delay - time.monotonic()))
  w.proc.send_signal(signal.SIGTERM)
  return w.finish()


def _interrupted_chain(start, moments, finish, results, key):
  """SIGTERM at each moment in turn on one workdir, then `finish` (the rest
  of the run); records each exit status and output."""
  results[key] = [(m, *_sigterm_at(start, *m)) for m in moments] + [("end", *finish())]


def test_sigterm_at_any_moment_exits_75_or_0_and_the_rerun_is_bit_identical(fake_cifar10, tmp_path):
  """The command and a sweep worker, each stopped at 21 moments from
  start-up through compilation to the first steps (side by side, each
  restart resuming the last), then run to the end: every exit is 75 or 0,
  and both finished runs equal one uninterrupted run bit for bit."""
  from actlab import sweep

  data_dir, _ = fake_cifar10
  fields = dict(data_dir=str(data_dir), download=False, input_scaling="unit", **_MOMENT_FIELDS)
  worker_env, block_sigterm = sweep.pinned_worker(None, python_env())

  def cli(wd):
    argv = [
      sys.executable,
      *experiment_args(data_dir, wd, **_MOMENT_FIELDS),
      "--cpu_devices=1",
    ]
    return lambda: _Watched(argv, env=python_env())

  def worker(sweep_dir):
    plan = sweep.Plan(
      str(ROOT / "experiments/configs/lenet5_cifar10.py"),
      [{"name": "relu", "fields": {}}],
      [0],
      {field_path(k): v for k, v in fields.items()},
    )
    plan.save(sweep_dir)
    return lambda: _Watched(
      sweep.worker_command(sweep_dir, 0), env=worker_env, preexec_fn=block_sigterm
    )

  def worker_to_done(sweep_dir):
    """The rest of a worker's run, stopped the moment it is marked done."""
    done = sweep_dir / "relu" / "seed_0" / sweep.DONE_FILE

    def finish():
      if done.exists():  # the last moments let the run finish: it is skipped now
        return worker(sweep_dir)().finish()
      w = worker(sweep_dir)()
      while not done.exists() and w.proc.poll() is None:
        time.sleep(0.002)
      w.proc.send_signal(signal.SIGTERM)
      return w.finish()

    return finish

  # The uninterrupted run first: it fills the compilation cache the others
  # share, and its timeline places the moments.
  ref = cli(tmp_path / "reference")()
  while ref.seen("handler") is None and ref.proc.poll() is None:
    time.sleep(0.002)
  code, out = ref.finish(timeout=300)
  assert code == 0, out[-3000:]
  t = {m: ref.seen(m) for m in ("handler", "Total params", "Epoch")}
  wd, sweep_dir = tmp_path / "cli", tmp_path / "sweep"
  results, chains = {}, []
  for key, start, first, t_first, finish in (
    ("cli", cli(wd), "handler", t["handler"], lambda: cli(wd)().finish(300)),
    ("worker", worker(sweep_dir), "", ref.t0, worker_to_done(sweep_dir)),
  ):
    moments = _spread(first, t_first, t["Total params"], t["Epoch"], _MOMENTS)
    chains.append(
      threading.Thread(target=_interrupted_chain, args=(start, moments, finish, results, key))
    )
  for th in chains:
    th.start()
  for th in chains:
    th.join(timeout=900)
  assert sorted(results) == ["cli", "worker"], f"chains that did not finish: {sorted(results)}"
  for key, runs in sorted(results.items()):
    for moment, code, out in runs:
      assert code in (0, faults.PREEMPTED_EXIT_CODE), (
        f"{key} at {moment}: exit {code}\n{out[-3000:]}"
      )
      assert "Traceback" not in out and "Fatal Python error" not in out, out[-3000:]
    assert runs[-1][1] == 0, f"{key} did not finish:\n{runs[-1][2][-3000:]}"

  want = _final_params(tmp_path / "reference")
  _assert_same_params(_final_params(wd), want)
  _assert_same_params(_final_params(sweep_dir / "relu" / "seed_0"), want)
