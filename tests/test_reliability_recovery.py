"""Faults found by probing a run: full disks, damaged checkpoints, NaN updates, resumes."""

import errno
import json
import os
import shutil
import signal
import threading
import time

import jax
import numpy as np
import pytest
from conftest import field_path
from test_train import small_config

from actlab import build, checkpoint, config, faults, steps, train, writers
from actlab.workdir import WorkdirError, prepare_workdir


@pytest.fixture(scope="module")
def _two_epochs_once(fake_cifar10, tmp_path_factory):
  data_dir, _ = fake_cifar10
  wd = tmp_path_factory.mktemp("two_epochs") / "wd"
  train.train_and_evaluate(small_config(data_dir, num_epochs=2), wd)
  return data_dir, wd


@pytest.fixture
def two_epochs(_two_epochs_once, tmp_path):
  """A copy of a finished 2-epoch run: checkpoints 5 and 10, config, metrics."""
  data_dir, wd = _two_epochs_once
  shutil.copytree(wd, tmp_path / "wd", ignore=shutil.ignore_patterns(".lock"))
  return data_dir, tmp_path / "wd"


def _full_disk_open(after: int):
  """An `open` whose files raise ENOSPC once `after` lines were written."""
  real_open = open

  class Full:
    def __init__(self, f):
      self._f, self._lines = f, 0

    def write(self, text):
      self._lines += 1
      if self._lines > after:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
      return self._f.write(text)

    def __getattr__(self, name):
      return getattr(self._f, name)

  def fake_open(path, mode="r", *a, **k):
    f = real_open(path, mode, *a, **k)
    return Full(f) if "a" in mode else f

  return fake_open


# ----------------------------------------------------------------------------
# A full disk
# ----------------------------------------------------------------------------


def test_tensorboard_write_error_never_blocks_training(tmp_path, monkeypatch):
  from tensorboardX import event_file_writer

  real_write, calls = event_file_writer.EventsWriter.write_event, []

  def full(self, event):  # the file header goes through; then the disk is full
    calls.append(event)
    if len(calls) > 1:
      raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    return real_write(self, event)

  monkeypatch.setattr(event_file_writer.EventsWriter, "write_event", full)
  writer = writers.MetricsWriter(tmp_path)
  raised = []

  def log_a_lot():
    try:
      for step in range(200):  # far more than tensorboardX's queue of 10
        writer.write("train_interval", step, 1, loss=1.0, accuracy=0.5)
        time.sleep(0.001)
    except writers.WriterError as e:
      raised.append(str(e))

  t = threading.Thread(target=log_a_lot, daemon=True)
  t.start()
  t.join(timeout=20)
  assert not t.is_alive(), "a TensorBoard write error blocked the training thread"
  assert raised and "No space left on device" in raised[0]
  assert str(tmp_path) in raised[0] and "MiB free on the filesystem" in raised[0]
  writer.close()


def test_disk_full_in_metrics_stops_with_free_space_and_resumes(two_epochs, monkeypatch):
  data_dir, wd = two_epochs
  monkeypatch.setattr(writers, "open", _full_disk_open(after=0), raising=False)
  with pytest.raises(writers.WriterError) as err:
    train.train_and_evaluate(small_config(data_dir, num_epochs=3), wd)
  msg = str(err.value)
  assert f"Could not write {wd / 'metrics.jsonl'}: No space left on device" in msg
  assert "MiB free on the filesystem" in msg and "resumes from its last checkpoint" in msg
  monkeypatch.undo()
  assert checkpoint.Checkpoints(wd).latest_step() == 10
  state = train.train_and_evaluate(small_config(data_dir, num_epochs=3), wd)
  assert int(state.step) == 15


# ----------------------------------------------------------------------------
# Damaged checkpoints
# ----------------------------------------------------------------------------


def test_empty_or_partial_step_folders_are_skipped_and_named(two_epochs, caplog):
  data_dir, wd = two_epochs
  ckpts = wd / "checkpoints"
  (ckpts / "999").mkdir()  # a stray folder
  shutil.rmtree(ckpts / "10" / "default")  # a partial checkpoint
  state = train.train_and_evaluate(small_config(data_dir, num_epochs=3), wd)
  assert int(state.step) == 15
  assert "Resumed from checkpoint 5 instead of 999 (skipped 10, 999)" in caplog.text
  assert (ckpts / "999.unusable").is_dir() and (ckpts / "10.unusable").is_dir()
  assert checkpoint.Checkpoints(wd).steps() == [5, 10, 15]


def test_flipped_bit_in_a_checkpoint_is_detected_and_skipped(two_epochs, caplog):
  data_dir, wd = two_epochs
  files = [f for f in (wd / "checkpoints" / "10").rglob("*") if f.is_file()]
  largest = max(files, key=lambda f: f.stat().st_size)
  blob = bytearray(largest.read_bytes())
  blob[len(blob) // 2] ^= 0x10
  largest.write_bytes(bytes(blob))
  state = train.train_and_evaluate(small_config(data_dir, num_epochs=3), wd)
  assert "Checkpoint 10" in caplog.text and "unusable" in caplog.text
  assert "Resumed from checkpoint 5 instead of 10" in caplog.text
  assert int(state.step) == 15


def test_a_flipped_bit_with_its_digest_deleted_is_not_restored_silently(two_epochs, caplog):
  data_dir, wd = two_epochs
  files = [f for f in (wd / "checkpoints" / "10").rglob("*") if f.is_file()]
  largest = max(files, key=lambda f: f.stat().st_size)
  blob = bytearray(largest.read_bytes())
  blob[len(blob) // 2] ^= 0x10
  largest.write_bytes(bytes(blob))
  (wd / "checkpoints" / "digests" / "10.json").unlink()
  state = train.train_and_evaluate(small_config(data_dir, num_epochs=3), wd)
  assert "Checkpoint(s) 10" in caplog.text and "no digest file" in caplog.text
  assert "Resumed from checkpoint 5 instead of 10" in caplog.text
  assert int(state.step) == 15


# ----------------------------------------------------------------------------
# Non-finite updates and the values that cause them
# ----------------------------------------------------------------------------


def test_nonfinite_update_from_finite_gradient_is_never_applied():
  # adam_eps=0: 0/0 wherever a gradient is exactly zero. A small MLP compiles fast.
  cfg = small_config(adam_eps=0.0, model="mlp", mlp_depth=1, mlp_width=8)
  state = build.create_train_state(cfg, build.make_model(cfg), jax.random.key(0))
  x = np.zeros((8, 32, 32, 3), np.float32)  # zero inputs: many zero gradients
  new, m = jax.jit(steps.train_step)(state, {"image": x, "label": np.zeros(8, np.int32)})
  assert all(np.isfinite(a).all() for a in jax.tree.leaves((new.params, new.opt_state)))
  jax.tree.map(np.testing.assert_array_equal, new.params, state.params)
  assert int(new.skipped_steps) == 1 and int(new.nonfinite_kind) == faults.NONFINITE_UPDATE
  assert float(m["count"]) == 0


@pytest.mark.parametrize(
  "field, value",
  [
    ("adam_b1", 1.0),
    ("adam_b2", 1.5),
    ("adam_b1", -0.1),
    ("adam_eps", 0.0),
    ("momentum", 1.0),
    ("learning_rate", float("inf")),
    ("activation", "elu(alpha=1e400)"),
  ],
)
def test_values_that_make_nan_parameters_are_refused(field, value):
  c = small_config(**{field: value})
  match = field_path(field) if field != "activation" else "finite"
  with pytest.raises(config.ConfigError, match=match):
    config.validate(c)


# ----------------------------------------------------------------------------
# Resuming with another config
# ----------------------------------------------------------------------------


@pytest.mark.parametrize(
  "field, value",
  [("model.name", "mlp"), ("model.kernel_init", "he_normal"), ("model.mlp_width", 64)],
)
def test_every_field_that_changes_the_run_is_compared(fake_cifar10, tmp_path, field, value):
  data_dir, _ = fake_cifar10
  wd = tmp_path / "wd"
  wd.mkdir()
  saved = small_config(data_dir).to_dict()
  (wd / "config.json").write_text(json.dumps(saved))
  (wd / "checkpoints" / "5").mkdir(parents=True)  # a run to resume; compared before it is read
  group, name = field.split(".")
  with pytest.raises(WorkdirError, match=f"{field}: {saved[group][name]!r} -> {value!r}"):
    train.train_and_evaluate(small_config(data_dir, **{field: value}), wd)
  assert json.loads((wd / "config.json").read_text()) == saved


def test_checkpoints_refuse_another_run_when_config_json_is_gone(two_epochs):
  data_dir, wd = two_epochs
  (wd / "config.json").unlink()
  other = small_config(data_dir, num_epochs=3, activation="tanh", learning_rate=3e-4)
  with pytest.raises(WorkdirError) as err:
    train.train_and_evaluate(other, wd)
  msg = str(err.value)
  assert "model.activation: 'relu' -> 'tanh'" in msg and "0.001 -> 0.0003" in msg
  assert "checkpoints/run_config.json" in msg
  assert not (wd / "config.json").exists()
  state = train.train_and_evaluate(small_config(data_dir, num_epochs=3), wd)  # the same run
  assert int(state.step) == 15


def test_config_json_is_written_only_after_the_checkpoint_restores(two_epochs):
  data_dir, wd = two_epochs
  before = (wd / "config.json").read_text()
  with pytest.raises(checkpoint.CheckpointError, match="could be restored"):
    train.train_and_evaluate(small_config(data_dir, model="mlp"), wd, allow_config_change=True)
  assert (wd / "config.json").read_text() == before
  # Fewer epochs than trained: allowed, and config.json keeps the longest.
  train.train_and_evaluate(small_config(data_dir, num_epochs=1, log_every_steps=1), wd)
  assert json.loads((wd / "config.json").read_text())["num_epochs"] == 2


# ----------------------------------------------------------------------------
# metrics.jsonl after kills and resumes
# ----------------------------------------------------------------------------


def _lines(*records):
  return "".join(json.dumps(r) + "\n" for r in records)


def test_read_metrics_skips_a_torn_line_and_keeps_the_newest_of_each_step(tmp_path):
  a = {"split": "train_interval", "step": 5, "epoch": 1, "loss": 1.0}
  b = {"split": "train_interval", "step": 10, "epoch": 1, "loss": 0.9}
  b2 = {**b, "loss": 0.8}  # the same step, logged again after a resume
  c = {"split": "eval", "step": 10, "epoch": 1, "accuracy": 0.5}
  (tmp_path / "metrics.jsonl").write_text(_lines(a, b, b2, c) + _lines(c)[:-12])
  with pytest.warns(UserWarning, match=f"{tmp_path / 'metrics.jsonl'}:5: skipped a line"):
    records = writers.read_metrics(tmp_path)
  assert records == [a, b2, c]


def test_writer_cuts_a_torn_tail_before_appending(tmp_path):
  a = {"split": "train", "step": 5, "epoch": 1, "loss": 1.0}
  (tmp_path / "metrics.jsonl").write_text(_lines(a) + '{"split": "eval", "st')
  w = writers.MetricsWriter(tmp_path, tensorboard=False)
  w.write("eval", 5, 1, accuracy=0.5)
  w.close()
  lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
  assert [json.loads(x)["split"] for x in lines] == ["train", "eval"]


# ----------------------------------------------------------------------------
# Workdir paths and signals before training
# ----------------------------------------------------------------------------


def test_workdir_tilde_is_expanded_and_unusable_ones_are_refused(tmp_path, monkeypatch):
  monkeypatch.setenv("HOME", str(tmp_path))
  assert prepare_workdir("~/x") == tmp_path / "x" and (tmp_path / "x").is_dir()
  with pytest.raises(WorkdirError, match="workdir is empty"):
    prepare_workdir("")
  (tmp_path / "file").write_text("")
  with pytest.raises(WorkdirError, match="not a directory"):
    prepare_workdir(tmp_path / "file")
  with pytest.raises(WorkdirError, match="Cannot create the workdir /proc/actlab"):
    prepare_workdir("/proc/actlab")


def test_ctrl_c_before_training_starts_interrupts_at_once():
  with faults.StopRequests():
    with pytest.raises(KeyboardInterrupt):
      signal.raise_signal(signal.SIGINT)
      time.sleep(1)  # a swallowed signal ends up here
  with faults.StopRequests() as stop:
    signal.raise_signal(signal.SIGTERM)  # recorded, never raised into XLA or orbax
    time.sleep(0.1)
    with pytest.raises(faults.Preempted, match="before training started"):
      stop.check()  # between the stages of preparing the run
  with faults.StopRequests() as stop:
    with pytest.raises(faults.Preempted, match="before training started"):
      with stop.interruptible():  # a download: at once
        signal.raise_signal(signal.SIGTERM)
        time.sleep(1)
  with faults.StopRequests() as stop:
    stop.arm()
    signal.raise_signal(signal.SIGINT)  # now a request to save and stop
    assert stop.signum == signal.SIGINT


def test_a_resumed_preemption_logs_the_same_intervals_and_a_1_based_epoch(fake_cifar10, tmp_path):
  data_dir, _ = fake_cifar10
  config = small_config(data_dir, num_epochs=2)
  train.train_and_evaluate(config, tmp_path / "straight")
  real_after_step = train._Loop._after_step

  def sigterm_after_step_8(self, epoch, i, stop):
    if self.step == 8:  # mid-interval: intervals end at steps 7 and 9 of epoch 2
      os.kill(os.getpid(), signal.SIGTERM)
    return real_after_step(self, epoch, i, stop)

  wd = tmp_path / "wd"
  with pytest.MonkeyPatch.context() as m:
    m.setattr(train._Loop, "_after_step", sigterm_after_step_8)
    with pytest.raises(faults.Preempted):
      train.train_and_evaluate(config, wd)
  train.train_and_evaluate(config, wd)
  records = writers.read_metrics(wd)
  (preempted,) = [r for r in records if r["split"] == "preempted"]
  assert (preempted["step"], preempted["epoch"]) == (8, 2)

  def intervals(d):
    return [
      (r["step"], r["epoch"]) for r in writers.read_metrics(d) if r["split"] == "train_interval"
    ]

  assert intervals(wd) == intervals(tmp_path / "straight")


def test_a_repeated_sigterm_is_one_request_to_save_and_a_second_ctrl_c_interrupts():
  # SLURM's requeue signals every process of the job, and the batch script
  # forwards the same SIGTERM: both must lead to one save, not an interrupt.
  with faults.StopRequests() as stop:
    stop.arm()
    signal.raise_signal(signal.SIGTERM)
    signal.raise_signal(signal.SIGTERM)
    assert stop.signum == signal.SIGTERM
    with pytest.raises(KeyboardInterrupt):
      signal.raise_signal(signal.SIGINT)
      time.sleep(1)


def test_a_save_that_fails_on_disk_is_one_error_line_and_orbax_logs_to_a_file(
  fake_cifar10, tmp_path
):
  """A real write failure inside orbax: the file size limit (`ulimit -f`)
  makes every checkpoint file over 200 KiB fail to write, as a full disk does.
  Checkpoint 5 exists from a first run; the save of step 10 fails."""
  import shlex
  import subprocess
  import sys

  from conftest import ROOT, experiment_args, python_env

  data_dir, _ = fake_cifar10
  wd = tmp_path / "wd"
  train.train_and_evaluate(small_config(data_dir), wd)

  fields = dict(batch_size=8, num_epochs=2, log_every_steps=2)
  argv = [sys.executable, *experiment_args(data_dir, wd, **fields)]
  out = subprocess.run(
    ["bash", "-c", f"ulimit -f 200 && exec {shlex.join(argv)}"],  # 200 KiB a file
    cwd=ROOT,
    env=python_env(),
    capture_output=True,
    text=True,
    timeout=300,
  )
  err = out.stderr
  assert out.returncode == 1, err[-3000:]
  lines = [x for x in err.splitlines() if x.startswith("error:")]
  assert len(lines) == 1, err[-3000:]
  (line,) = lines
  assert "Could not save the checkpoint for step 10" in line, line
  assert "the run resumes from step 5" in line and "(File too large)" in line, line
  assert f"orbax's own report of the failure is in {wd / checkpoint.LOG_FILE}" in line, line
  assert "Traceback" not in err and "Event loop is closed" not in err, err[-3000:]
  assert len(err.splitlines()) < 10, err[-3000:]
  assert "Error writing" in (wd / checkpoint.LOG_FILE).read_text()
  # What a rerun resumes from (test_disk_full_on_save_... reruns one).
  assert checkpoint.Checkpoints(wd).latest_step() == 5


def test_orbax_tracebacks_from_closed_event_loops_go_to_the_log_file(tmp_path, monkeypatch):
  """tensorstore reports a callback into an event loop orbax already closed
  through sys.unraisablehook; those go to orbax.log, anything else to the hook before."""
  import asyncio
  import sys

  loop = asyncio.new_event_loop()
  loop.close()
  with pytest.raises(RuntimeError, match="Event loop is closed") as closed:
    loop.call_soon_threadsafe(print)
  passed_on = []
  monkeypatch.setattr(sys, "unraisablehook", passed_on.append)
  log = checkpoint._OrbaxLog(tmp_path / checkpoint.LOG_FILE)
  log.install()
  try:
    for e in (closed.value, ValueError("not orbax's")):
      sys.unraisablehook(
        type("Unraisable", (), dict(exc_type=type(e), exc_value=e, exc_traceback=e.__traceback__))
      )
  finally:
    log.uninstall()
  assert sys.unraisablehook == passed_on.append
  assert "Event loop is closed" in (tmp_path / checkpoint.LOG_FILE).read_text()
  assert [str(u.exc_value) for u in passed_on] == ["not orbax's"]


def test_close_after_a_failed_save_raises_that_failure_not_orbaxs_second_one(tmp_path):
  """An async save that failed may make orbax's own close fail too; the
  user must still get the one-line CheckpointError naming the step."""
  ckpt = checkpoint.Checkpoints(tmp_path)
  real = ckpt._manager
  closed = []

  class Broken:
    def all_steps(self):
      return []

    def wait_until_finished(self):
      raise OSError(errno.EFBIG, "File too large")

    def close(self):
      closed.append(True)
      raise ValueError("orbax: the manager's save thread already failed")

  ckpt._manager, ckpt._in_flight = Broken(), 10
  try:
    with pytest.raises(checkpoint.CheckpointError, match="for step 10.*File too large"):
      ckpt.close()
    assert closed == [True]  # the manager was still closed
  finally:
    real.close()
