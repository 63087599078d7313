"""Training and evaluation: `train_and_evaluate(config, workdir)`.

Reads top to bottom: state, steps, data on device, the epoch loop. The whole
dataset lives on the device as uint8; each epoch's order is
`permutation(fold_in(key, epoch))`, so resuming needs no iterator state and
continues bit for bit. Each step gathers its batch on the device and adds its
metrics to on-device sums; the host reads those sums once per
`log_every_steps`, after the next step is already dispatched, so the device
never waits for the host. (A whole epoch as one `lax.scan` program was
measured and rejected: XLA:CPU runs the convolutions inside a while loop about
15x slower, see docs/benchmarks.md.)
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
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
from flax import struct
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from actlab import activations, checkpoint, config as config_lib, data, models, writers

Array = jax.Array
Metrics = dict[str, Array]

# ----------------------------------------------------------------------------
# State
# ----------------------------------------------------------------------------


class TrainState(struct.PyTreeNode):
  """Everything a bit-identical continuation needs; a plain pytree."""

  step: Array
  epoch: Array
  params: Any
  opt_state: Any
  rng: Array  # raw uint32 key data: checkpoints store it as an ordinary array
  apply_fn: Callable[..., Array] = struct.field(pytree_node=False)
  tx: optax.GradientTransformation = struct.field(pytree_node=False)


def make_optimizer(config: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """The optimizer named by `config.optimizer` at `config.learning_rate`."""
  lr = config.learning_rate
  if config.optimizer == "adam":
    return optax.adam(lr, b1=config.adam_b1, b2=config.adam_b2, eps=config.adam_eps)
  if config.optimizer == "adamw":
    return optax.adamw(
        lr, b1=config.adam_b1, b2=config.adam_b2, eps=config.adam_eps,
        weight_decay=config.weight_decay,
    )
  if config.optimizer == "momentum":
    return optax.sgd(lr, momentum=config.momentum)
  return optax.sgd(lr)


def make_model(config: ml_collections.ConfigDict) -> nn.Module:
  """The LeNet5 described by `config`, activation resolved once here."""
  return models.LeNet5(
      activation=activations.get(config.activation),
      num_classes=data.cifar10.NUM_CLASSES,
      dtype=jnp.dtype(config.dtype),
  )


def create_train_state(
    config: ml_collections.ConfigDict, model: nn.Module, rng: Array
) -> TrainState:
  """Initialises parameters and optimizer state from `rng`."""
  init_rng, train_rng = jax.random.split(rng)
  x = jnp.zeros((1, *data.cifar10.IMAGE_SHAPE), jnp.float32)
  params = model.init(init_rng, x)["params"]
  tx = make_optimizer(config)
  return TrainState(
      step=jnp.zeros((), jnp.int32),
      epoch=jnp.zeros((), jnp.int32),
      params=params,
      opt_state=tx.init(params),
      rng=jax.random.key_data(train_rng),
      apply_fn=model.apply,
      tx=tx,
  )


# ----------------------------------------------------------------------------
# Steps (pure)
# ----------------------------------------------------------------------------


def _loss_and_correct(logits: Array, labels: Array) -> tuple[Array, Array]:
  loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
  correct = (jnp.argmax(logits, -1) == labels).astype(jnp.float32)
  return loss, correct


def train_step(
    state: TrainState, batch: dict[str, Array]
) -> tuple[TrainState, Metrics]:
  """One Adam step on `batch` = {'image': float B×H×W×C, 'label': int B}.

  Returns the new state and the batch's summed loss, correct count and size.
  """

  def loss_fn(params):
    logits = state.apply_fn({"params": params}, batch["image"])
    loss, correct = _loss_and_correct(logits, batch["label"])
    return loss.mean(), (loss.sum(), correct.sum())

  grads, (loss_sum, correct) = jax.grad(loss_fn, has_aux=True)(state.params)
  updates, opt_state = state.tx.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state)
  count = jnp.asarray(batch["label"].shape[0], jnp.float32)
  return new_state, {"loss": loss_sum, "correct": correct, "count": count}


def eval_step(
    params: Any, apply_fn: Callable[..., Array], batch: dict[str, Array]
) -> Metrics:
  """Summed loss and correct count over the examples whose `mask` is 1."""
  logits = apply_fn({"params": params}, batch["image"])
  loss, correct = _loss_and_correct(logits, batch["label"])
  mask = batch["mask"]
  return {"loss": (loss * mask).sum(), "correct": (correct * mask).sum(), "count": mask.sum()}


# ----------------------------------------------------------------------------
# Compiled programs over the on-device dataset
# ----------------------------------------------------------------------------


def _add(a: Metrics, b: Metrics) -> Metrics:
  return jax.tree.map(jnp.add, a, b)


def _zeros() -> Metrics:
  return {k: jnp.zeros((), jnp.float32) for k in ("loss", "correct", "count")}


def epoch_permutation(rng: Array, epoch: Array, n: int) -> Array:
  """The order of the training set in `epoch`; depends on nothing else."""
  key = jax.random.fold_in(jax.random.wrap_key_data(rng), epoch)
  return jax.random.permutation(key, n)


def _train_on_indices(
    state: TrainState,
    sums: Metrics,
    images: Array,
    labels: Array,
    order: Array,
    i: Array,
    *,
    batch_size: int,
    preprocess: Callable[[Array], Array],
    batch_sharding: NamedSharding,
) -> tuple[TrainState, Metrics]:
  """Step `i` of an epoch: gathers the batch on device, trains, adds metrics."""
  idx = jax.lax.dynamic_slice_in_dim(order, i * batch_size, batch_size)
  batch = {"image": preprocess(images[idx]), "label": labels[idx]}
  batch = jax.lax.with_sharding_constraint(batch, batch_sharding)
  state, m = train_step(state, batch)
  return state, _add(sums, m)


def _eval_on_slice(
    sums: Metrics,
    params: Any,
    images: Array,
    labels: Array,
    mask: Array,
    i: Array,
    *,
    apply_fn: Callable[..., Array],
    batch_size: int,
    preprocess: Callable[[Array], Array],
    batch_sharding: NamedSharding,
) -> Metrics:
  """Adds eval batch `i` of a padded split to `sums`."""
  sl = lambda a: jax.lax.dynamic_slice_in_dim(a, i * batch_size, batch_size)  # noqa: E731
  batch = {"image": preprocess(sl(images)), "label": sl(labels), "mask": sl(mask)}
  batch = jax.lax.with_sharding_constraint(batch, batch_sharding)
  return _add(sums, eval_step(params, apply_fn, batch))


def _summarise(sums: Metrics) -> dict[str, float]:
  sums = jax.device_get(sums)
  n = max(float(sums["count"]), 1.0)
  return {"loss": float(sums["loss"]) / n, "accuracy": float(sums["correct"]) / n}


# ----------------------------------------------------------------------------
# Data on device
# ----------------------------------------------------------------------------


def load_splits(config: ml_collections.ConfigDict) -> tuple[data.Split, data.Split]:
  """Train and eval splits in host memory, as uint8."""
  kw = dict(data_dir=config.data_dir or None, download=config.download, archive=config.archive or None)
  return data.load(config.train_split, **kw), data.load(config.eval_split, **kw)


def make_preprocess(config: ml_collections.ConfigDict, train: data.Split) -> Callable[[Array], Array]:
  """uint8 images -> model inputs, as chosen by `config.input_scaling`."""
  mean = std = None
  if config.input_scaling == "standardize":
    mean, std = (jnp.asarray(s) for s in data.cifar10.channel_stats(train.images))
  return functools.partial(data.scale_images, scaling=config.input_scaling, mean=mean, std=std)


def _pad_to(a: np.ndarray, multiple: int) -> np.ndarray:
  pad = (-a.shape[0]) % multiple
  return np.concatenate([a, np.zeros((pad, *a.shape[1:]), a.dtype)]) if pad else a


# ----------------------------------------------------------------------------
# The run
# ----------------------------------------------------------------------------


def make_mesh() -> jax.sharding.Mesh:
  """A 1-D data-parallel mesh over every device of every process."""
  # Auto axes: XLA propagates shardings from the constraints placed on batches.
  return jax.make_mesh(
      (jax.device_count(),), ("data",), axis_types=(jax.sharding.AxisType.Auto,)
  )


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


def _write_config(config: ml_collections.ConfigDict, workdir: Path) -> None:
  resolved = config.to_dict()
  resolved["activation"] = activations.canonical(config.activation)
  (workdir / "config.json").write_text(json.dumps(resolved, indent=2, sort_keys=True) + "\n")


def train_and_evaluate(
    config: ml_collections.ConfigDict, workdir: str | os.PathLike
) -> TrainState:
  """Trains `config`'s model, evaluating every epoch; resumes from `workdir`.

  Writes workdir/config.json, metrics.jsonl (see `final_summary`), TensorBoard
  events and checkpoints. Returns the final state.
  """
  config_lib.validate(config)
  workdir = Path(workdir).expanduser()
  workdir.mkdir(parents=True, exist_ok=True)

  train, evals = load_splits(config)
  _check_batch(config, train.images.shape[0])
  _write_config(config, workdir)

  mesh = make_mesh()
  replicated = NamedSharding(mesh, P())
  batch_sharding = NamedSharding(mesh, P("data"))
  preprocess = make_preprocess(config, train)

  model = make_model(config)
  logging.info("\n%s", models.summary(model, data.cifar10.IMAGE_SHAPE))
  print(models.summary(model, data.cifar10.IMAGE_SHAPE), flush=True)

  state = create_train_state(config, model, jax.random.key(config.seed))
  state = jax.device_put(state, replicated)
  ckpt = checkpoint.Checkpoints(workdir, max_to_keep=config.keep_checkpoints)
  if ckpt.latest_step() is not None:
    state = ckpt.restore(state)
    logging.info("Resumed at step %d, epoch %d.", int(state.step), int(state.epoch))

  bs = config.batch_size
  train_x = jax.device_put(train.images, replicated)
  train_y = jax.device_put(train.labels, replicated)
  eval_mask = _pad_to(np.ones(evals.labels.shape, np.float32), bs)
  eval_x = jax.device_put(_pad_to(evals.images, bs), replicated)
  eval_y = jax.device_put(_pad_to(evals.labels, bs), replicated)
  eval_mask = jax.device_put(eval_mask, replicated)

  steps_per_epoch = train.images.shape[0] // bs
  common = dict(batch_size=bs, preprocess=preprocess, batch_sharding=batch_sharding)
  train_on = jax.jit(functools.partial(_train_on_indices, **common), donate_argnums=(0, 1))
  eval_on = jax.jit(
      functools.partial(_eval_on_slice, apply_fn=model.apply, **common), donate_argnums=0
  )
  permutation = jax.jit(epoch_permutation, static_argnums=2)

  def evaluate(params):
    sums = _zeros()
    for i in range(eval_x.shape[0] // bs):
      sums = eval_on(sums, params, eval_x, eval_y, eval_mask, jnp.int32(i))
    return _summarise(sums)

  lead = jax.process_index() == 0
  writer = writers.MetricsWriter(workdir) if lead else None
  console = writers.ConsoleProgress(config.num_epochs, steps_per_epoch)
  step = int(state.step)  # host copy, so no donated buffer is read later
  try:
    for epoch in range(int(state.epoch), config.num_epochs):
      console.start_epoch(epoch + 1)
      t0 = time.perf_counter()
      order = permutation(state.rng, state.epoch, train.images.shape[0])
      totals, interval, pending = _zeros(), _zeros(), None
      for i in range(steps_per_epoch):
        state, interval = train_on(state, interval, train_x, train_y, order, jnp.int32(i))
        step += 1
        if pending is not None:  # the last interval, read while this step runs
          _report_interval(console, writer, *pending)
          pending = None
        if (i + 1) % config.log_every_steps == 0 or i + 1 == steps_per_epoch:
          totals = _add(totals, interval)
          pending = (interval, totals, step, epoch + 1, i + 1)
          interval = _zeros()
      _report_interval(console, writer, *pending)
      train_metrics = _summarise(totals)
      eval_metrics = evaluate(state.params)
      seconds = time.perf_counter() - t0
      state = state.replace(epoch=state.epoch + 1)
      if not math.isfinite(train_metrics["loss"]):
        raise FloatingPointError(
            f"Training loss became {train_metrics['loss']} in epoch {epoch + 1}"
            f" (step {step}); lower config.learning_rate. The last good"
            f" checkpoint is in {ckpt.directory}."
        )
      ckpt.save(step, state)
      console.end_epoch(
          seconds,
          loss=train_metrics["loss"],
          acc=train_metrics["accuracy"],
          val_loss=eval_metrics["loss"],
          val_acc=eval_metrics["accuracy"],
      )
      if writer:
        writer.write(
            "train", step, epoch + 1, **train_metrics, seconds=seconds,
            ms_per_step=1000.0 * seconds / steps_per_epoch,
        )
        writer.write("eval", step, epoch + 1, **eval_metrics)
  finally:
    ckpt.close()
    if writer:
      writer.close()
  return state


def _report_interval(console, writer, sums, totals, step, epoch, done) -> None:
  """Logs a finished logging interval; called once the next step is queued."""
  chunk = _summarise(sums)
  running = _summarise(totals)
  console.update(done, running["loss"], running["accuracy"])
  if writer:
    writer.write("train_interval", int(step), epoch, **chunk)


def final_summary(workdir: str | os.PathLike) -> dict[str, Any]:
  """Last and best eval accuracy of a run, from its metrics.jsonl."""
  evals = [r for r in writers.read_metrics(workdir) if r["split"] == "eval"]
  # A resumed run may have re-logged an epoch; the latest record wins.
  by_epoch = {r["epoch"]: r for r in evals}
  if not by_epoch:
    return {}
  last = by_epoch[max(by_epoch)]
  best = max(by_epoch.values(), key=lambda r: r["accuracy"])
  return {
      "epochs": last["epoch"],
      "final_eval_accuracy": last["accuracy"],
      "final_eval_loss": last["loss"],
      "best_eval_accuracy": best["accuracy"],
      "best_epoch": best["epoch"],
  }
