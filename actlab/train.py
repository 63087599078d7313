"""Training and evaluation: `train_and_evaluate(config, workdir)`.

Reads top to bottom: data on device, compiled steps, the epoch loop. The
whole dataset lives on the device as uint8; each epoch's order is
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
import functools
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

from actlab import build, checkpoint, data, distributed, models, writers
from actlab import config as config_lib
from actlab import steps as steps_lib
from actlab.faults import NonFiniteGuard, Preempted, StopRequests
from actlab.steps import TrainState, epoch_permutation
from actlab.workdir import (
  WorkdirError,
  WorkdirLock,
  check_config,
  prepare_workdir,
  write_config,
)

Array = jax.Array

# ----------------------------------------------------------------------------
# Data on device
# ----------------------------------------------------------------------------


def make_mesh(devices: list[jax.Device] | None = None) -> jax.sharding.Mesh:
  """A 1-D data-parallel mesh over `devices` (default: every device of every process)."""
  devices = jax.devices() if devices is None else devices
  # Auto axes: XLA propagates shardings from the constraints placed on batches.
  return jax.make_mesh(
    (len(devices),), ("data",), axis_types=(jax.sharding.AxisType.Auto,), devices=devices
  )


def load_splits(
  config: ml_collections.ConfigDict,
  data_arg: str | build.InMemoryData | None = None,
) -> tuple[data.Split, data.Split, data.Split | None]:
  """This process's slice of the train split, the whole eval and test splits.

  Eval and test are small (at most 10,000 images) and read whole by every
  process, so their metrics are exact for any number of processes. The test
  split is None when `config.data.test_split` is empty (the tutorial's protocol).
  `data_arg` replaces the config's dataset: a TFDS name (read with the
  config's split names) or in-memory arrays (`build.in_memory_splits`).
  """
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  if data_arg is not None and not isinstance(data_arg, str):
    train, evals, test = build.in_memory_splits(data_arg)
    return _process_slice(train), evals, test
  if data_arg is not None:
    kw = dict(data_dir=config.data.data_dir or None, download=config.data.download)
    load = functools.partial(build.load_tfds, data_arg)
  else:
    kw = dict(
      data_dir=config.data.data_dir or None,
      download=config.data.download,
      archive=config.data.archive or None,
    )
    load = data.load
  train_split = config.data.train_split
  if jax.process_count() > 1:
    train_split = tfds.split_for_jax_process(train_split, drop_remainder=True)
  test = load(config.data.test_split, **kw) if config.data.test_split else None
  return load(train_split, **kw), load(config.data.eval_split, **kw), test


def _process_slice(split: data.Split) -> data.Split:
  """This process's contiguous share of an in-memory split (all of it on one process)."""
  n = len(split.labels) // jax.process_count()
  i = jax.process_index()
  return data.Split(split.images[i * n : (i + 1) * n], split.labels[i * n : (i + 1) * n])


def make_preprocess(
  config: ml_collections.ConfigDict, train_images: np.ndarray | Array
) -> Callable[[Array], Array]:
  """uint8 images -> model inputs, as chosen by `config.data.input_scaling`."""
  mean = std = None
  if config.data.input_scaling == "standardize":
    images = distributed.local_value(train_images)
    mean, std = (jnp.asarray(s) for s in data.cifar10.channel_stats(images))
  return functools.partial(data.scale_images, scaling=config.data.input_scaling, mean=mean, std=std)


def _pad_to(a: np.ndarray, multiple: int) -> np.ndarray:
  pad = (-a.shape[0]) % multiple
  return np.concatenate([a, np.zeros((pad, *a.shape[1:]), a.dtype)]) if pad else a


def _check_batch(config: ml_collections.ConfigDict, num_train: int) -> None:
  n_dev = jax.device_count()
  if config.batch_size % n_dev:
    raise config_lib.ConfigError(
      f"config.batch_size={config.batch_size} does not divide over the"
      f" {n_dev} devices; use a multiple of {n_dev}."
    )
  if config.batch_size > num_train:
    raise config_lib.ConfigError(
      f"config.batch_size={config.batch_size} is larger than the training"
      f" split ({num_train} examples)."
    )


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
  if model is not None and not isinstance(model, nn.Module):
    raise TypeError(f"model must be a flax.linen Module, got {type(model).__name__}.")
  if tx is not None and not isinstance(tx, optax.GradientTransformation):
    raise TypeError(f"tx must be an optax.GradientTransformation, got {type(tx).__name__}.")
  workdir = prepare_workdir(workdir)
  # One lock per job: process 0 holds it for all processes of a multi-host run.
  lock = WorkdirLock(workdir) if distributed.is_lead() else contextlib.nullcontext()
  with lock, StopRequests() as stop:
    return _run(config, workdir, allow_config_change, stop, model=model, tx=tx, data_arg=data)


def _run(
  config: ml_collections.ConfigDict,
  workdir: Path,
  allow_config_change: bool,
  stop: StopRequests,
  *,
  model: nn.Module | None,
  tx: optax.GradientTransformation | None,
  data_arg: str | build.InMemoryData | None,
) -> TrainState:
  lead = distributed.is_lead()
  train, evals, test = load_splits(config, data_arg)
  input_shape = tuple(train.images.shape[1:])
  mesh = make_mesh()
  replicated = NamedSharding(mesh, P())
  batch_sharding = NamedSharding(mesh, P("data"))
  train_x = distributed.replicate_slices(train.images, mesh)
  train_y = distributed.replicate_slices(train.labels, mesh)
  num_train = train_x.shape[0]
  _check_batch(config, num_train)
  own_model = model is not None
  num_classes = _num_classes(data_arg, train_y, evals, test)
  if model is None:
    model = build.make_model(config, num_classes)
  custom = _custom_parts(model, input_shape, own_model, tx, data_arg, num_classes)
  if lead:
    check_config(config, workdir, allow_config_change)
    _check_parts(custom, workdir, allow_config_change)
  # Standardisation statistics from the whole (global) training split.
  preprocess = make_preprocess(config, train_x)
  activation = _diagnosed_activation(config, model)
  if lead:
    print(models.summary(model, input_shape), flush=True)

  def init(rng):
    return saved_tree(build.create_train_state(config, model, rng, tx=tx, input_shape=input_shape))

  # Created inside jit with a replicated output: the same on every device
  # and process, without a host round trip.
  saved = jax.jit(init, out_shardings=replicated)(jax.random.key(config.seed))
  ckpt = checkpoint.Checkpoints(workdir, max_to_keep=config.keep_checkpoints)
  restored = ckpt.restore_latest(saved)
  if restored is not None:
    saved = restored[1]
    logging.warning("Resuming from checkpoint %d in %s.", restored[0], ckpt.directory)
  if lead:
    # Only once the checkpoint is known to fit it.
    write_config(_recorded_config(config, custom), workdir)
  state, totals, selected = saved["state"], saved["epoch_totals"], saved["selected"]
  selected_epoch = int(distributed.local_value(selected["epoch"]))
  selected_accuracy = np.float32(distributed.local_value(selected["eval_accuracy"]))

  bs = config.batch_size

  def on_device(split: data.Split) -> tuple[Array, Array, Array]:
    """A split padded to whole batches, replicated, with a mask of real examples."""
    mask = np.ones(split.labels.shape, np.float32)
    arrays = (split.images, split.labels, mask)
    return tuple(distributed.replicate(_pad_to(a, bs), mesh) for a in arrays)

  eval_arrays = on_device(evals)
  test_arrays = on_device(test) if test is not None else None

  steps_per_epoch = num_train // bs
  common = dict(batch_size=bs, preprocess=preprocess, batch_sharding=batch_sharding)
  train_on = jax.jit(functools.partial(steps_lib.train_on_indices, **common), donate_argnums=(0, 1))
  eval_on = jax.jit(
    functools.partial(steps_lib.eval_on_slice, apply_fn=build.apply_fn(model), **common),
    donate_argnums=0,
  )
  permutation = jax.jit(epoch_permutation, static_argnums=2)
  train_diagnosed = None
  if config.diagnostics.enabled:
    diagnose = (activation, config.diagnostics.saturation_threshold)
    train_diagnosed = jax.jit(
      functools.partial(steps_lib.train_on_indices, diagnose=diagnose, **common),
      donate_argnums=(0, 1),
    )
  # Metric sums live on every device of every process, like the state.
  zeros = jax.jit(steps_lib.zeros, static_argnums=0, out_shardings=replicated)

  def evaluate(params, arrays=eval_arrays) -> dict[str, float]:
    sums = zeros(steps_lib.EVAL_METRICS)
    for i in range(arrays[0].shape[0] // bs):
      sums = eval_on(sums, params, *arrays, jnp.int32(i))
    return steps_lib.summarise(sums)

  copy = jax.jit(lambda tree: jax.tree.map(jnp.copy, tree), out_shardings=replicated)

  writer = writers.MetricsWriter(workdir) if lead else None
  console = writers.ConsoleProgress(config.num_epochs, steps_per_epoch, enabled=lead)
  guard = NonFiniteGuard(config, ckpt)
  multi = jax.process_count() > 1
  diag_pending: list[tuple[int, int, dict[str, Any]]] = []
  # Host copies of step and epoch, so no donated buffer is ever read back.
  step = int(distributed.local_value(state.step))
  first_epoch = int(distributed.local_value(state.epoch))
  last_step = config.num_epochs * steps_per_epoch - 1
  patience = config.early_stopping_patience
  pending = None
  trained = False

  def flush_logs() -> None:
    """Logs the finished interval and queued diagnostics; applies the guard."""
    nonlocal pending, diag_pending
    if pending is not None:
      guard.check(_report_interval(console, writer, *pending), state)
      pending = None
    diag_pending = _write_diagnostics(writer, diag_pending)

  stop.arm()  # from here on, SIGTERM/SIGINT save a checkpoint before stopping
  try:
    for epoch in range(first_epoch, config.num_epochs):
      if patience and selected_epoch and epoch - selected_epoch >= patience:
        if writer:
          writer.write("early_stop", step, epoch, selected_epoch=selected_epoch, patience=patience)
        break
      console.start_epoch(epoch + 1)
      trained = True
      t0 = time.perf_counter()
      blocked0 = ckpt.seconds_blocked
      order = permutation(state.rng, state.epoch, num_train)
      interval, pending = zeros(), None
      for i in range(step - epoch * steps_per_epoch, steps_per_epoch):
        args = (state, interval, train_x, train_y, order, jnp.int32(i))
        if train_diagnosed is not None and (
          step % config.diagnostics.every_steps == 0 or step == last_step
        ):
          # Diagnostics of the step from `step` (step 0: at initialisation;
          # the run's last step is always included).
          state, interval, diag = train_diagnosed(*args)
          diag_pending.append((step, epoch + 1, diag))
        else:
          state, interval = train_on(*args)
        step += 1
        flush_logs()  # the last interval, read while this step runs
        last = i + 1 == steps_per_epoch
        boundary = last or (i + 1) % config.log_every_steps == 0
        # Processes must stop at the same step: agree at logging boundaries.
        stopping = (
          stop.signum is not None
          if not multi
          else (boundary and distributed.any_process(stop.signum is not None))
        )
        save_now = stopping or (
          config.checkpoint_every_steps > 0
          and step % config.checkpoint_every_steps == 0
          and not last
        )
        if save_now or boundary:
          totals = steps_lib.accumulate(totals, interval)
          pending = (interval, totals, step, epoch + 1, i + 1)
          interval = zeros()
        if save_now:
          flush_logs()
          ckpt.save(step, {"state": state, "epoch_totals": totals, "selected": selected})
          if stopping:
            ckpt.wait()
            signum = stop.signum or signal.SIGTERM  # another process was signalled
            if writer:
              writer.write("preempted", step, epoch, signal=signal.Signals(signum).name)
            raise Preempted(step, signum, ckpt.directory)
      flush_logs()
      train_metrics = steps_lib.summarise(totals)
      eval_metrics = evaluate(state.params)
      if np.float32(eval_metrics["accuracy"]) > selected_accuracy:
        selected_epoch, selected_accuracy = epoch + 1, np.float32(eval_metrics["accuracy"])
        selected = {
          "params": copy(state.params),
          "epoch": distributed.replicate(np.int32(selected_epoch), mesh),
          "eval_accuracy": distributed.replicate(selected_accuracy, mesh),
        }
      state = state.replace(epoch=state.epoch + 1)
      totals = zeros()
      ckpt.save(step, {"state": state, "epoch_totals": totals, "selected": selected})
      seconds = time.perf_counter() - t0
      console.end_epoch(
        seconds,
        loss=train_metrics["loss"],
        acc=train_metrics["accuracy"],
        val_loss=eval_metrics["loss"],
        val_acc=eval_metrics["accuracy"],
      )
      if writer:
        writer.write(
          "train",
          step,
          epoch + 1,
          **train_metrics,
          seconds=seconds,
          ms_per_step=1000.0 * seconds / steps_per_epoch,
          checkpoint_seconds=ckpt.seconds_blocked - blocked0,
        )
        writer.write("eval", step, epoch + 1, **eval_metrics)
    # The test split, once, at the epoch the eval split selected: after
    # training, or when a run stopped between its last save and this record.
    untested = writer is not None and not any(
      r["split"] == "test" for r in writers.read_metrics(workdir)
    )
    if test_arrays is not None and selected_epoch and distributed.any_process(trained or untested):
      test_metrics = evaluate(selected["params"], test_arrays)
      if writer:
        writer.write(
          "test",
          step,
          selected_epoch,
          **test_metrics,
          selected_epoch=selected_epoch,
          eval_accuracy=float(selected_accuracy),
          split_name=config.data.test_split or "test",  # or the caller's arrays
        )
  finally:
    ckpt.close()
    if writer:
      writer.close()
  return state


def _custom_parts(
  model: nn.Module,
  input_shape: tuple[int, ...],
  own_model: bool,
  tx: optax.GradientTransformation | None,
  data_arg: str | build.InMemoryData | None,
  num_classes: int | None,
) -> dict[str, Any] | None:
  """`build.describe_parts` of what the caller brought; None: nothing."""
  if not own_model and tx is None and data_arg is None:
    return None
  in_memory = data_arg is not None and not isinstance(data_arg, str)
  return build.describe_parts(
    model,
    input_shape,
    own_model=own_model,
    tx=tx,
    data_arg=data_arg,
    splits=build.in_memory_splits(data_arg) if in_memory else (),
    num_classes=num_classes,
  )


def _diagnosed_activation(config: ml_collections.ConfigDict, model: nn.Module) -> Any:
  """The model's activation, which diagnostics need (`model.activation`)."""
  activation = getattr(model, "activation", None)
  if config.diagnostics.enabled and activation is None:
    raise config_lib.ConfigError(
      f"config.diagnostics.enabled needs a model with an `activation` field;"
      f" {type(model).__name__} has none. Set --config.diagnostics.enabled=False."
    )
  return activation


def _num_classes(
  data_arg: str | build.InMemoryData | None, train_y: Array, *splits: data.Split | None
) -> int | None:
  """Classes of a caller's data (largest label + 1 over every split, the
  whole training split included); None: the config's dataset's."""
  if data_arg is None:
    return None
  labels = [s.labels for s in splits if s is not None]
  return build.num_classes_of(distributed.local_value(train_y), *labels)


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
  if allow_change or not path.exists():
    return
  try:
    saved = json.loads(path.read_text()).get("custom")
  except (OSError, ValueError, AttributeError):
    return  # check_config has already said what is wrong with the file
  requested = json.loads(json.dumps(custom))
  if saved == requested:
    return
  had, want = saved or {}, requested or {}
  lines = [
    f"  custom.{part}: {had.get(part, 'config')!r} -> {want.get(part, 'config')!r}"
    for part in ("model", "optimizer", "data")
    if had.get(part, "config") != want.get(part, "config")
  ]
  raise WorkdirError(
    f"{workdir} holds a run trained with other parts:\n"
    + "\n".join(lines)
    + "\nPass the same model, tx and data as that run, use another workdir,"
    " or pass allow_config_change=True to continue it with these."
  )


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


def _write_diagnostics(writer, pending: list) -> list:
  """Writes queued diagnostics records (one transfer each); returns []."""
  for step, epoch, diag in pending:
    values = jax.tree.map(lambda a: float(distributed.local_value(a)), diag)
    if writer:
      writer.write("diagnostics", step, epoch, **values)
  return []


def _report_interval(console, writer, sums, totals, step, epoch, done) -> dict[str, float]:
  """Logs a finished logging interval; returns its summary."""
  interval = steps_lib.summarise(sums)
  running = steps_lib.summarise(totals)
  console.update(done, running["loss"], running["accuracy"])
  if writer:
    writer.write("train_interval", int(step), epoch, **interval)
  return interval


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
