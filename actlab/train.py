"""Training and evaluation: `train_and_evaluate(config, workdir)`.

`build.run_parts` turns the config and the caller's parts into the run's
objects in one call (the mesh, the data on device, the model, the compiled
steps: `build.RunParts`); here the state is restored from the latest
checkpoint and driven by the epoch loop (`_Loop`). The whole dataset
lives on the device as uint8; each epoch's order is
`permutation(fold_in(key, epoch))`, so resuming needs no iterator state and
continues bit for bit, even from the middle of an epoch. Each step gathers its
batch on the device and adds its metrics to on-device sums; the host reads
those sums once per `log_every_steps`, after the next step is already
dispatched, so the device never waits for the host. (A whole epoch as one
`lax.scan` program was measured and rejected: XLA:CPU runs the convolutions
inside a while loop about 15x slower, see docs/benchmarks.md.)
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from actlab import build, checkpoint, distributed, models, writers
from actlab import config as config_lib
from actlab import steps as steps_lib
from actlab.faults import NonFiniteGuard, Preempted, StopRequests
from actlab.steps import TrainState
from actlab.workdir import (
  WorkdirError,
  WorkdirLock,
  check_config,
  has_checkpoint,
  prepare_workdir,
  record_provenance,
  write_config,
)

Array = jax.Array
Metrics = dict[str, Array]

# ----------------------------------------------------------------------------
# The run
# ----------------------------------------------------------------------------


def train_and_evaluate(
  config: ml_collections.ConfigDict,
  workdir: str | os.PathLike,
  *,
  model: nn.Module | None = None,
  tx: optax.GradientTransformation | None = None,
  data: str | build.InMemoryData | None = None,
  allow_config_change: bool = False,
) -> TrainState:
  """Trains `config`'s model, evaluating every epoch; resumes from `workdir`.

  Research code can bring its own parts, each replacing what the config
  names: `model`, a flax module from a batch of images to logits (its
  `__call__` may take `train`); `tx`, an optax transformation; `data`, a
  TFDS dataset name (read with the config's split names) or in-memory arrays
  `{"train": (images, labels), "eval": (images, labels)[, "test": ...]}`
  (see `build.in_memory_splits`). config.json then records them under
  `custom` (see `build.describe_parts`), and resuming the workdir needs
  parts that match, as it needs a matching config.

  Writes workdir/config.json, metrics.jsonl (see `final_summary`), TensorBoard
  events and checkpoints. Returns the final state. Raises `Preempted` after
  saving when SIGTERM/SIGINT arrives, `NonFiniteError` when the non-finite
  policy stops the run, and `WorkdirError` when another run holds the workdir
  or its saved config or parts differ (unless `allow_config_change`).
  """
  config_lib.validate(config)
  if config.get("seeds_per_program", 1) > 1:  # actlab.multiseed drives this module, not back
    raise config_lib.ConfigError(
      f"config.seeds_per_program={config.seeds_per_program} trains several seeds in one"
      " program: call actlab.multiseed.train_and_evaluate(config, workdir), as"
      " experiments/main.py and sweeps do, or set --config.seeds_per_program=1."
    )
  if model is not None and not isinstance(model, nn.Module):
    raise TypeError(f"model must be a flax.linen Module, got {type(model).__name__}.")
  if tx is not None and not isinstance(tx, optax.GradientTransformation):
    raise TypeError(f"tx must be an optax.GradientTransformation, got {type(tx).__name__}.")
  workdir = prepare_workdir(workdir)
  # One lock per job: process 0 holds it for all processes of a multi-host run.
  lock = WorkdirLock(workdir) if distributed.is_lead() else contextlib.nullcontext()
  with lock, StopRequests() as stop:
    loop = _prepare(
      config, workdir, allow_config_change, stop, model=model, tx=tx, data_arg=data
    )
    try:
      stop.arm()  # from here on, SIGTERM/SIGINT save a checkpoint before stopping
      loop.run(stop)
    finally:
      loop.close()
    return loop.state


def _prepare(
  config: ml_collections.ConfigDict,
  workdir: Path,
  allow_config_change: bool,
  stop: StopRequests,
  *,
  model: nn.Module | None,
  tx: optax.GradientTransformation | None,
  data_arg: str | build.InMemoryData | None,
) -> _Loop:
  """Everything up to the first step: the run's parts, checks, state.

  A SIGTERM meanwhile stops the run between these stages (`stop.check()`);
  only a download is interrupted at once.
  """
  lead = distributed.is_lead()
  parts = build.run_parts(
    config,
    model=model,
    tx=tx,
    data=data_arg,
    loading=stop.interruptible if config.data.download else contextlib.nullcontext,
    after_loading=stop.check,
  )
  if lead:
    check_config(config, workdir, allow_config_change)
    _check_parts(parts.custom, workdir, allow_config_change)
    print(models.summary(parts.model, parts.input_shape), flush=True)
  stop.check()
  saved, ckpt = _initial_or_restored(config, workdir, parts.mesh, parts.init_state)
  try:
    stop.check()
    if lead:
      # Only once the checkpoint is known to fit it.
      write_config(_recorded_config(config, parts.custom), workdir)
      record_provenance(workdir, int(distributed.local_value(saved["state"].step)))
    return _Loop(config, workdir, parts, saved, ckpt)
  except BaseException:
    ckpt.close()  # no orbax thread outlives a run stopped here
    raise


def _initial_or_restored(
  config: ml_collections.ConfigDict,
  workdir: Path,
  mesh: jax.sharding.Mesh,
  init_state: Callable[[jax.Array], TrainState],
) -> tuple[dict[str, Any], checkpoint.Checkpoints]:
  """The `saved_tree` of the latest checkpoint, else of `init_state`'s new
  state (from `config.seed`); and the checkpoints."""

  def init(rng):
    return saved_tree(init_state(rng))

  # Created inside jit with a replicated output: the same on every device
  # and process, without a host round trip.
  saved = jax.jit(init, out_shardings=NamedSharding(mesh, P()))(jax.random.key(config.seed))
  ckpt = checkpoint.Checkpoints(workdir, max_to_keep=config.keep_checkpoints)
  restored = ckpt.restore_latest(saved)
  if restored is not None:
    saved = restored[1]
    logging.warning("Resuming from checkpoint %d in %s.", restored[0], ckpt.directory)
  return saved, ckpt


# ----------------------------------------------------------------------------
# The epoch loop
# ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Interval:
  """A finished logging interval, read back and logged while the next step runs."""

  sums: Metrics  # the interval's metric sums
  totals: Metrics  # the epoch's sums up to the interval's end
  step: int
  epoch: int  # 1-based, as logged
  done: int  # steps of the epoch done
  # Cut short by a stop: its sums are in `totals`; it is not logged as a
  # train_interval, so a resumed run logs the same intervals as one that was not stopped.
  partial: bool = False


@dataclasses.dataclass(frozen=True)
class _Diagnosed:
  """A diagnosed step's diagnostics, still on the device."""

  step: int  # the step the diagnostics are of (0: at initialisation)
  epoch: int  # 1-based, as logged
  values: dict[str, Any]


def _summarise(sums: Metrics) -> dict[str, float]:
  """Host-side means from replicated device sums (one transfer)."""
  sums = {k: distributed.local_value(v) for k, v in sums.items()}
  n = float(sums["count"])
  out = {
    "loss": float(sums["loss"]) / n if n else float("nan"),
    "accuracy": float(sums["correct"]) / n if n else float("nan"),
  }
  for k in ("skipped", "max_consecutive_skips"):
    if k in sums:
      out[k] = int(sums[k])
  return out


class _Loop:
  """The epoch loop: steps, logging, checkpoints, evaluation, early and
  requested stops, and the test split once at the end.

  Holds the run's device state (`state`, the epoch's metric `totals`, the
  `selected` epoch's parameters) and host copies of the step and epoch, so
  no donated buffer is ever read back.
  """

  def __init__(
    self,
    config: ml_collections.ConfigDict,
    workdir: Path,
    parts: build.RunParts,
    saved: dict[str, Any],
    ckpt: checkpoint.Checkpoints,
  ):
    self.config, self.workdir, self.mesh, self.ckpt = config, workdir, parts.mesh, ckpt
    self.train_data, self.evals, self.test = parts.train, parts.evals, parts.test
    self.steps = parts.steps
    self._resume(saved)
    self.steps_per_epoch = self.train_data.num_examples // config.batch_size
    self.last_step = config.num_epochs * self.steps_per_epoch - 1
    lead = distributed.is_lead()
    self.writer = writers.MetricsWriter(workdir) if lead else None
    self.console = writers.ConsoleProgress(config.num_epochs, self.steps_per_epoch, enabled=lead)
    self.guard = NonFiniteGuard(config, ckpt)
    self.multi = jax.process_count() > 1
    self.interval = None  # the current logging interval's metric sums
    self.pending: _Interval | None = None
    self.diagnosed: list[_Diagnosed] = []
    self.trained = False

  def _resume(self, saved: dict[str, Any]) -> None:
    """Takes the device state from `saved` (`saved_tree`), and host copies
    of its step, epoch and selected epoch (read once, before any donation)."""
    self.state, self.totals = saved["state"], saved["epoch_totals"]
    self.selected = saved["selected"]
    self.selected_epoch = int(distributed.local_value(self.selected["epoch"]))
    self.selected_accuracy = np.float32(distributed.local_value(self.selected["eval_accuracy"]))
    self.step = int(distributed.local_value(self.state.step))
    self.first_epoch = int(distributed.local_value(self.state.epoch))

  def run(self, stop: StopRequests) -> None:
    """Trains the remaining epochs (or until early stopping), then tests once."""
    for epoch in range(self.first_epoch, self.config.num_epochs):
      if self._stops_early(epoch):
        break
      self._train_epoch(epoch, stop)
    self._test_once()

  def close(self) -> None:
    self.ckpt.close()
    if self.writer:
      self.writer.close()

  def _stops_early(self, epoch: int) -> bool:
    """True (after logging why) when `patience` epochs brought no better eval accuracy."""
    patience = self.config.early_stopping_patience
    if not (patience and self.selected_epoch and epoch - self.selected_epoch >= patience):
      return False
    if self.writer:
      self.writer.write(
        "early_stop", self.step, epoch, selected_epoch=self.selected_epoch, patience=patience
      )
    return True

  def _train_epoch(self, epoch: int, stop: StopRequests) -> None:
    """The epoch's remaining steps, then its evaluation, checkpoint and records."""
    self.console.start_epoch(epoch + 1)
    self.trained = True
    t0 = time.perf_counter()
    blocked0 = self.ckpt.seconds_blocked
    order = self.steps.permutation(self.state.rng, self.state.epoch, self.train_data.num_examples)
    self.interval = self.steps.zeros()
    for i in range(self.step - epoch * self.steps_per_epoch, self.steps_per_epoch):
      self._step(epoch, order, i)
      self._flush_logs()  # the last interval, read while this step runs
      self._after_step(epoch, i, stop)
    self._flush_logs()
    self._end_epoch(epoch, t0, blocked0)

  def _step(self, epoch: int, order: Array, i: int) -> None:
    """Dispatches step `i` of the epoch (diagnosed when it is due)."""
    data = self.train_data
    args = (self.state, self.interval, data.images, data.labels, order, jnp.int32(i))
    if self.steps.train_diagnosed is not None and (
      self.step % self.config.diagnostics.every_steps == 0 or self.step == self.last_step
    ):
      # Diagnostics of the step from `step` (step 0: at initialisation;
      # the run's last step is always included).
      self.state, self.interval, diag = self.steps.train_diagnosed(*args)
      self.diagnosed.append(_Diagnosed(self.step, epoch + 1, diag))
    else:
      self.state, self.interval = self.steps.train(*args)
    self.step += 1

  def _after_step(self, epoch: int, i: int, stop: StopRequests) -> None:
    """Ends a logging interval at its boundary; saves when due or asked to stop."""
    last = i + 1 == self.steps_per_epoch
    skip_limit = self._skip_limit_reached()
    boundary = last or (i + 1) % self.config.log_every_steps == 0 or skip_limit
    stopping = self._stop_requested(stop, boundary)
    every = self.config.checkpoint_every_steps
    save_now = stopping or (every > 0 and self.step % every == 0 and not last)
    if save_now or boundary:
      self.totals = steps_lib.accumulate(self.totals, self.interval)
      self.pending = _Interval(
        self.interval, self.totals, self.step, epoch + 1, i + 1, partial=not boundary
      )
      self.interval = self.steps.zeros()
    if skip_limit:
      self._flush_logs()  # logs the interval; the guard stops the run at this step
    if save_now:
      self._flush_logs()
      self._save()
      if stopping:
        self._stop(epoch, stop)

  def _skip_limit_reached(self) -> bool:
    """Under nonfinite_policy='skip', whether this step made the
    max_consecutive_skips-th skip in a row. Stopping exactly there needs the
    step's outcome before the next is dispatched: one scalar read per step,
    paid only by runs that choose this policy (the default reads nothing)."""
    if self.config.nonfinite_policy != "skip":
      return False
    skips = int(distributed.local_value(self.state.consecutive_skips))
    return skips >= self.config.max_consecutive_skips

  def _stop_requested(self, stop: StopRequests, boundary: bool) -> bool:
    """Whether a signal asks to stop after this step. Processes must stop at
    the same step: several agree at logging boundaries."""
    if not self.multi:
      return stop.signum is not None
    return boundary and distributed.any_process(stop.signum is not None)

  def _stop(self, epoch: int, stop: StopRequests) -> None:
    """Waits for the checkpoint just saved, logs the preemption, raises `Preempted`."""
    self.ckpt.wait()
    signum = stop.signum or signal.SIGTERM  # another process was signalled
    if self.writer:
      self.writer.write("preempted", self.step, epoch + 1, signal=signal.Signals(signum).name)
    raise Preempted(self.step, signum, self.ckpt.directory)

  def _save(self) -> None:
    self.ckpt.save(
      self.step, {"state": self.state, "epoch_totals": self.totals, "selected": self.selected}
    )

  def _flush_logs(self) -> None:
    """Logs the finished interval and queued diagnostics; applies the guard."""
    if self.pending is not None:
      self.guard.check(self._report(self.pending), self.state)
      self.pending = None
    for d in self.diagnosed:  # one transfer each
      values = jax.tree.map(lambda a: float(distributed.local_value(a)), d.values)
      if self.writer:
        self.writer.write("diagnostics", d.step, d.epoch, **values)
    self.diagnosed = []

  def _report(self, interval: _Interval) -> dict[str, float]:
    """Logs a finished logging interval; returns its summary."""
    summary = _summarise(interval.sums)
    running = _summarise(interval.totals)
    self.console.update(interval.done, running["loss"], running["accuracy"])
    if self.writer and not interval.partial:
      self.writer.write("train_interval", int(interval.step), interval.epoch, **summary)
    return summary

  def _end_epoch(self, epoch: int, t0: float, blocked0: float) -> None:
    """Evaluates, selects, advances the epoch, saves, and logs the epoch."""
    train_metrics = _summarise(self.totals)
    eval_metrics = self._evaluate(self.state.params, self.evals)
    self._select(epoch, np.float32(eval_metrics["accuracy"]))
    self.state = self.state.replace(epoch=self.state.epoch + 1)
    self.totals = self.steps.zeros()
    self._save()
    self._log_epoch(epoch, time.perf_counter() - t0, blocked0, train_metrics, eval_metrics)

  def _log_epoch(
    self,
    epoch: int,
    seconds: float,
    blocked0: float,
    train_metrics: dict[str, float],
    eval_metrics: dict[str, float],
  ) -> None:
    """The epoch's console line and its train and eval records."""
    self.console.end_epoch(
      seconds,
      loss=train_metrics["loss"],
      acc=train_metrics["accuracy"],
      val_loss=eval_metrics["loss"],
      val_acc=eval_metrics["accuracy"],
    )
    if self.writer:
      self.writer.write(
        "train",
        self.step,
        epoch + 1,
        **train_metrics,
        seconds=seconds,
        ms_per_step=1000.0 * seconds / self.steps_per_epoch,
        checkpoint_seconds=self.ckpt.seconds_blocked - blocked0,
      )
      self.writer.write("eval", self.step, epoch + 1, **eval_metrics)

  def _select(self, epoch: int, accuracy: np.float32) -> None:
    """Keeps a copy of the parameters when the eval accuracy is the best so far."""
    if accuracy > self.selected_accuracy:
      self.selected_epoch, self.selected_accuracy = epoch + 1, accuracy
      self.selected = {
        "params": self.steps.copy(self.state.params),
        "epoch": distributed.replicate(np.int32(self.selected_epoch), self.mesh),
        "eval_accuracy": distributed.replicate(self.selected_accuracy, self.mesh),
      }

  def _evaluate(self, params: Any, split: build.DeviceSplit) -> dict[str, float]:
    sums = self.steps.zeros(steps_lib.EVAL_METRICS)
    for i in range(split.num_examples // self.config.batch_size):
      sums = self.steps.eval(sums, params, split.images, split.labels, split.mask, jnp.int32(i))
    return _summarise(sums)

  def _test_once(self) -> None:
    """The test split, once, at the epoch the eval split selected: after
    training, or when a run stopped between its last save and this record."""
    if not self._test_due():
      return
    test_metrics = self._evaluate(self.selected["params"], self.test)
    if self.writer:
      self.writer.write(
        "test",
        self.step,
        self.selected_epoch,
        **test_metrics,
        selected_epoch=self.selected_epoch,
        eval_accuracy=float(self.selected_accuracy),
        split_name=self.config.data.test_split or "test",  # or the caller's arrays
      )

  def _test_due(self) -> bool:
    """Whether there is a test split and a selected epoch, and this run
    trained or its test record is missing (every process agrees)."""
    untested = self.writer is not None and not any(
      r["split"] == "test" for r in writers.read_metrics(self.workdir)
    )
    return bool(
      self.test is not None
      and self.selected_epoch
      and distributed.any_process(self.trained or untested)
    )


# ----------------------------------------------------------------------------
# The caller's parts
# ----------------------------------------------------------------------------


def _recorded_config(
  config: ml_collections.ConfigDict, custom: dict[str, Any] | None
) -> ml_collections.ConfigDict:
  """`config`, plus a `custom` entry naming the parts the caller brought."""
  if custom is None:
    return config
  recorded = ml_collections.ConfigDict(config.to_dict())
  recorded.custom = custom
  return recorded


def _check_parts(custom: dict[str, Any] | None, workdir: Path, allow_change: bool) -> None:
  """Refuses to continue a run with other caller's parts than it was trained with.

  A run trained from its config alone (no `custom` in config.json) and one
  with the caller's parts do not continue each other either.
  """
  path = workdir / "config.json"
  if allow_change or not path.exists() or not has_checkpoint(workdir):
    return  # nothing to resume: a new run (see check_config)
  try:
    saved = json.loads(path.read_text()).get("custom")
  except (OSError, ValueError, AttributeError):
    return  # check_config has already said what is wrong with the file
  requested = json.loads(json.dumps(custom))
  if saved == requested:
    return
  had = config_lib.flatten({"custom": saved or {}})
  want = config_lib.flatten({"custom": requested or {}})
  lines = [
    f"  {key}: {had.get(key, '(none)')!r} -> {want.get(key, '(none)')!r}"
    for key in sorted(set(had) | set(want))
    if had.get(key, "(none)") != want.get(key, "(none)")
  ]
  raise WorkdirError(
    f"{workdir} holds a run trained with other parts:\n"
    + "\n".join(lines)
    + "\nPass the same model, tx and data as that run, use another workdir,"
    " or pass allow_config_change=True to continue it with these."
  )


# ----------------------------------------------------------------------------
# Checkpoints and results
# ----------------------------------------------------------------------------


def saved_tree(state: TrainState) -> dict[str, Any]:
  """What a checkpoint holds: the state, the epoch's metric sums, and the
  epoch selected on the eval split with its parameters (zeros and epoch 0
  until the first evaluation; the test split is evaluated on them)."""
  selected = {
    "params": jax.tree.map(jnp.zeros_like, state.params),
    "epoch": jnp.zeros((), jnp.int32),
    "eval_accuracy": jnp.full((), -1.0, jnp.float32),
  }
  return {"state": state, "epoch_totals": steps_lib.zeros(), "selected": selected}


def restore_run(
  workdir: str | os.PathLike,
  *,
  model: nn.Module | None = None,
  tx: optax.GradientTransformation | None = None,
) -> tuple[ml_collections.ConfigDict, TrainState]:
  """The config and the latest saved state of a run, for analysis.

  Restores on this process's devices whatever the run's device count was. A
  run trained with the caller's own model or optimizer needs them again
  (`model=`, `tx=`).
  """
  workdir = Path(workdir)
  saved = json.loads((workdir / "config.json").read_text())
  config = config_lib.from_saved(saved)
  custom = saved.get("custom") or {}
  for part, given in (("model", model), ("optimizer", tx)):
    if custom.get(part, "config") != "config" and given is None:
      arg = "model" if part == "model" else "tx"
      raise checkpoint.CheckpointError(
        f"{workdir} was trained with the caller's own {part};"
        f" pass it as restore_run(..., {arg}=...)."
      )
  shapes = {
    s.get("image_shape") for s in (custom.get("data") or {}).values() if isinstance(s, dict)
  } - {None}
  input_shape = tuple(int(n) for n in shapes.pop().split("x")) if shapes else None
  if model is None:
    data_desc = custom.get("data")
    num_classes = data_desc.get("num_classes") if isinstance(data_desc, dict) else None
    model = build.make_model(config, num_classes)
  like = build.create_train_state(
    config, model, jax.random.key(config.seed), tx=tx, input_shape=input_shape
  )
  restored = checkpoint.Checkpoints(workdir).restore_latest(saved_tree(like))
  if restored is None:
    raise checkpoint.CheckpointError(f"{workdir} holds no checkpoint.")
  return config, restored[1]["state"]


def final_summary(workdir: str | os.PathLike) -> dict[str, Any]:
  """A run's outcome, from its metrics.jsonl.

  `final_eval_*` is the last epoch's evaluation on the eval split;
  `max_eval_accuracy` the largest over epochs (on the tutorial's protocol,
  where the eval split is the test split, that maximum is a look at the test
  set, not a result). With a test split, `test_accuracy` is the test split
  evaluated once at `selected_epoch`, the epoch of highest eval accuracy.
  """
  records = writers.read_metrics(workdir)
  # A resumed run may have re-logged an epoch; the latest record wins.
  by_epoch = {r["epoch"]: r for r in records if r["split"] == "eval"}
  if not by_epoch:
    return {}
  last = by_epoch[max(by_epoch)]
  peak = max(by_epoch.values(), key=lambda r: r["accuracy"])
  out = {
    "epochs": last["epoch"],
    "final_eval_accuracy": last["accuracy"],
    "final_eval_loss": last["loss"],
    "max_eval_accuracy": peak["accuracy"],
    "max_eval_epoch": peak["epoch"],
  }
  tests = [r for r in records if r["split"] == "test"]
  if tests:
    t = tests[-1]
    out.update(
      test_accuracy=t["accuracy"],
      test_loss=t["loss"],
      selected_epoch=t["selected_epoch"],
      selected_eval_accuracy=t["eval_accuracy"],
    )
  return out
