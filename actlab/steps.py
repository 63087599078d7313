"""The train state and the pure, jit-able step functions.

Every function here is pure: state in, state out. `build.compile_steps` jits
them with shardings and donation; `train.py` drives them from the host.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct
from jax.sharding import NamedSharding

from actlab import diagnostics
from actlab.faults import NONFINITE_GRADIENT, NONFINITE_LOSS, NONFINITE_UPDATE

Array = jax.Array
Metrics = dict[str, Array]


def all_finite(tree: Any) -> Array:
  """True when every floating-point value in `tree` is finite (on device, no sync)."""
  leaves = [x for x in jax.tree.leaves(tree) if jnp.issubdtype(jnp.result_type(x), jnp.inexact)]
  return jnp.all(jnp.stack([jnp.isfinite(x).all() for x in leaves])) if leaves else jnp.bool_(True)


class TrainState(struct.PyTreeNode):
  """Everything a bit-identical continuation needs; a plain pytree.

  `rng` is raw uint32 key data so checkpoints store it as an ordinary array.
  `first_nonfinite_step` is -1 until a step produces a non-finite loss or
  gradient; that step's update is never applied. `nonfinite_kind` says which
  (a code of `actlab.faults.NONFINITE_NAMES`; 0 until then).
  """

  step: Array
  epoch: Array
  params: Any
  opt_state: Any
  rng: Array
  skipped_steps: Array
  consecutive_skips: Array
  first_nonfinite_step: Array
  nonfinite_kind: Array
  apply_fn: Callable[..., Array] = struct.field(pytree_node=False)
  tx: optax.GradientTransformation = struct.field(pytree_node=False)


def _loss_and_correct(logits: Array, labels: Array) -> tuple[Array, Array]:
  loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
  correct = (jnp.argmax(logits, -1) == labels).astype(jnp.float32)
  return loss, correct


# Offset folded into the run key for stochastic activations (RReLU), so that
# stream never meets the data-order stream fold_in(key, epoch).
_ACTIVATION_NOISE_STREAM = 0x5EED


def _update(
  state: TrainState, batch: dict[str, Array], collect: bool
) -> tuple[TrainState, Metrics, Any, Any]:
  """The optimizer step; with `collect`, also the sown pre-activations, the
  activation each site applies and dL/dz at every activation site
  (collections COLLECTION, ACTIVATIONS and PERTURBATIONS of `actlab.diagnostics`)."""
  noise = jax.random.fold_in(
    jax.random.fold_in(jax.random.wrap_key_data(state.rng), _ACTIVATION_NOISE_STREAM),
    state.step,
  )
  kw = dict(train=True, rngs={"rrelu": noise})

  def loss_fn(params, perturbations=None):
    if collect:
      variables = {"params": params, diagnostics.PERTURBATIONS: perturbations}
      logits, sown = state.apply_fn(
        variables, batch["image"], mutable=[diagnostics.COLLECTION, diagnostics.ACTIVATIONS], **kw
      )
    else:
      logits, sown = state.apply_fn({"params": params}, batch["image"], **kw), {}
    loss, correct = _loss_and_correct(logits, batch["label"])
    return loss.mean(), (loss.sum(), correct.sum(), sown)

  if collect:
    # Zeros added to each pre-activation z: their gradient is dL/dz.
    zeros = diagnostics.zero_perturbations(state.apply_fn, state.params, batch["image"], **kw)
    (grads, dz), (loss_sum, correct, sown) = jax.grad(loss_fn, (0, 1), has_aux=True)(
      state.params, zeros
    )
    sown = {**sown, diagnostics.PERTURBATIONS: dz}
  else:
    grads, (loss_sum, correct, sown) = jax.grad(loss_fn, has_aux=True)(state.params)
  loss_ok = jnp.isfinite(loss_sum)
  grad_ok = jnp.isfinite(optax.tree.norm(grads))
  updates, opt_state = state.tx.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  # A finite gradient can still give non-finite parameters (adam_eps=0, b1=1).
  update_ok = all_finite((params, opt_state))
  ok = loss_ok & grad_ok & update_ok
  keep = lambda new, old: jax.tree.map(lambda n, o: jnp.where(ok, n, o), new, old)  # noqa: E731
  bad = (~ok).astype(jnp.int32)
  first_bad = (state.first_nonfinite_step < 0) & ~ok
  kind = jnp.where(
    loss_ok, jnp.where(grad_ok, NONFINITE_UPDATE, NONFINITE_GRADIENT), NONFINITE_LOSS
  )
  consecutive = (state.consecutive_skips + 1) * bad
  new_state = state.replace(
    step=state.step + 1,
    params=keep(params, state.params),
    opt_state=keep(opt_state, state.opt_state),
    skipped_steps=state.skipped_steps + bad,
    consecutive_skips=consecutive,
    first_nonfinite_step=jnp.where(first_bad, state.step + 1, state.first_nonfinite_step),
    nonfinite_kind=jnp.where(first_bad, kind, state.nonfinite_kind),
  )
  n = jnp.asarray(batch["label"].shape[0], jnp.float32)
  metrics = {
    "loss": jnp.where(ok, loss_sum, 0.0),
    "correct": jnp.where(ok, correct, 0.0),
    "count": jnp.where(ok, n, 0.0),
    "skipped": bad.astype(jnp.float32),
    "max_consecutive_skips": consecutive.astype(jnp.float32),
  }
  return new_state, metrics, grads, sown


def train_step(state: TrainState, batch: dict[str, Array]) -> tuple[TrainState, Metrics]:
  """One optimizer step on `batch` = {'image': float B×H×W×C, 'label': int B}.

  A step whose loss or gradient norm is not finite leaves params and
  optimizer state untouched and is counted in `skipped_steps`; the host
  decides whether to stop (config.nonfinite_policy). Returns the new state
  and the batch's summed loss, correct count, size and skip flags.
  """
  new_state, metrics, _, _ = _update(state, batch, collect=False)
  return new_state, metrics


def train_step_with_diagnostics(
  state: TrainState,
  batch: dict[str, Array],
  activation: Any,
  saturation_threshold: float,
) -> tuple[TrainState, Metrics, dict[str, dict[str, Array]]]:
  """`train_step` plus per-layer diagnostics (see `actlab.diagnostics`).

  `activation` is the model's activation field, for the sites that do not
  record the activation they apply (see `diagnostics.activation_stats`);
  `saturation_threshold` is eps, relative to each activation's maximum
  slope. The update is computed by the same code as `train_step`'s, so
  parameters are identical with diagnostics on or off, and any step may be
  diagnosed (the run's last one included): the result does not depend on
  which steps are.
  """
  new_state, metrics, grads, sown = _update(state, batch, collect=True)
  diag = diagnostics.gradient_stats(state.params, grads, new_state.params)
  preactivations = sown.get(diagnostics.COLLECTION, {})
  applied = sown.get(diagnostics.ACTIVATIONS, {})
  diag.update(
    diagnostics.activation_stats(preactivations, activation, saturation_threshold, applied)
  )
  backprop = diagnostics.backprop_norms(sown.get(diagnostics.PERTURBATIONS, {}))
  if backprop:
    diag["backprop_norm"] = backprop
  return new_state, metrics, diag


def eval_step(params: Any, apply_fn: Callable[..., Array], batch: dict[str, Array]) -> Metrics:
  """Summed loss and correct count over the examples whose `mask` is 1."""
  logits = apply_fn({"params": params}, batch["image"])
  loss, correct = _loss_and_correct(logits, batch["label"])
  mask = batch["mask"]
  return {"loss": (loss * mask).sum(), "correct": (correct * mask).sum(), "count": mask.sum()}


# ----------------------------------------------------------------------------
# Metric sums
# ----------------------------------------------------------------------------

TRAIN_METRICS = ("loss", "correct", "count", "skipped", "max_consecutive_skips")
EVAL_METRICS = ("loss", "correct", "count")


def zeros(keys: tuple[str, ...] = TRAIN_METRICS) -> Metrics:
  return {k: jnp.zeros((), jnp.float32) for k in keys}


def accumulate(a: Metrics, b: Metrics) -> Metrics:
  """Adds metric sums; `max_*` entries keep their maximum instead."""
  return {k: (jnp.maximum if k.startswith("max_") else jnp.add)(a[k], b[k]) for k in a}


# ----------------------------------------------------------------------------
# Steps over the on-device dataset
# ----------------------------------------------------------------------------


def epoch_permutation(rng: Array, epoch: Array, n: int) -> Array:
  """The order of the training set in `epoch`; depends on nothing else."""
  key = jax.random.fold_in(jax.random.wrap_key_data(rng), epoch)
  return jax.random.permutation(key, n)


def gather_batch(
  images: Array,
  labels: Array,
  order: Array,
  i: Array,
  *,
  batch_size: int,
  preprocess: Callable[[Array], Array],
  batch_sharding: NamedSharding,
) -> dict[str, Array]:
  """Batch `i` of an epoch from the on-device dataset, sharded over 'data'."""
  idx = jax.lax.dynamic_slice_in_dim(order, i * batch_size, batch_size)
  batch = {"image": preprocess(images[idx]), "label": labels[idx]}
  return jax.lax.with_sharding_constraint(batch, batch_sharding)


def train_on_indices(
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
  diagnose: tuple[Callable[..., Array], float] | None = None,
) -> tuple[TrainState, Metrics] | tuple[TrainState, Metrics, dict[str, Any]]:
  """Step `i` of an epoch: gathers the batch on device, trains, adds metrics.

  With `diagnose=(activation, saturation_threshold)` it also returns the
  step's diagnostics.
  """
  batch = gather_batch(
    images,
    labels,
    order,
    i,
    batch_size=batch_size,
    preprocess=preprocess,
    batch_sharding=batch_sharding,
  )
  if diagnose is None:
    state, m = train_step(state, batch)
    return state, accumulate(sums, m)
  state, m, diag = train_step_with_diagnostics(state, batch, *diagnose)
  return state, accumulate(sums, m), diag


def eval_on_slice(
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
  return accumulate(sums, eval_step(params, apply_fn, batch))
