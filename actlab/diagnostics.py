"""What an activation does inside a network, measured in the train step.

All functions are pure and run inside the jitted step; the step returns their
results as device arrays, and the host reads them at the next logging point.
With `config.diagnostics.enabled` off, nothing here is traced: the model's `sow` and
`perturb` calls are no-ops, so the step compiles exactly as without
diagnostics, and with diagnostics on the parameters are the same bit for bit.

A model takes part by passing each hidden layer's pre-activation z through
`record_preactivation(self, layer, z, activation=f)` (`actlab.models.ActivationSites`
does that for every activation site). Each site is measured with the
activation it records, so a model that applies sigmoid at one site and relu
at another gets sigmoid's figures for the first and relu's for the second; a
site that records no activation is measured with the activation passed to
`activation_stats` (the model's `activation` field in a run). Layers inside
submodules are found too and named by their path, e.g. "block/conv". A model
that records nothing gets a warning and only the kernel statistics. The
Flax NNX models of `actlab.nnx` give the same record from
`actlab.nnx.train_step_with_diagnostics`.

The record (`RECORD_KEYS`): every key maps {layer: float}, per training batch.
Let f be the activation, eps = `config.diagnostics.saturation_threshold` and
S = max|f'| over the real line (the activation's `Facts.max_slope` when the
registry knows it, else the maximum over a grid on [-40, 40]; 1, the
identity's slope, when f' is unbounded, e.g. exponential). Thresholds are
inclusive: a slope is *small* when |f'(z)| <= eps * S.

  grad_norm      ||dL/dW|| of each kernel (every layer with a kernel,
                 the output layer included)
  update_ratio   ||W_new - W|| / ||W||: how far one step moves the kernel
  backprop_norm  ||dL/dz|| of each activation site's pre-activation z over
                 the whole batch (L the batch-mean loss): the backward
                 signal alone, which grad_norm mixes with the forward one
  preact_mean    mean of z
  preact_std     std of z
  act_mean       mean of f(z)
  act_std        std of f(z)
  dead           fraction of units (channels of a conv, neurons of a dense
                 layer: the last axis) whose slope is small for every
                 example and position of the batch: (almost) no gradient
                 reaches their weights. leaky_relu's 0.01 on the negative
                 side counts with eps = 0.01, S = 1.
  near_dead      fraction of units whose mean |f'| over the batch is small
                 (<= eps * S); every dead unit is near-dead
  saturated      fraction of entries (example, position, unit) whose slope
                 is small and that lie on a saturating tail: a side where
                 f' -> 0 and f flattens towards a non-zero curve or bound
                 (both tails of sigmoid and tanh, elu's negative tail,
                 relu6 above 6). A rectifier's zero side, where f is exactly
                 0 (relu below 0), is not a saturating tail: units there are
                 counted by dead/near_dead, not as saturated. The tails are
                 the activation's `Facts.saturates` sides (from the shape of
                 f' on the grid when it has no facts), beyond the outermost
                 grid points where the slope is not small.

The slope statistics (act_*, dead, near_dead, saturated) need f' as a
function of z alone, so they are reported for plain elementwise functions
and registry specs, not for flax modules (PReLU, Maxout, a user's module)
whose slope depends on their own parameters; backprop_norm and the
pre-activation statistics are reported for every activation.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from actlab import activations

Array = jax.Array

COLLECTION = "preactivations"
# The activation each site applies, in a collection of its own so that
# 'preactivations' holds arrays only.
ACTIVATIONS = "site_activations"
PERTURBATIONS = "perturbations"
# Recorded names must differ from the layers' own (submodule) names.
_SUFFIX = ":preactivation"
_ACTIVATION_SUFFIX = ":activation"
RECORD_KEYS = (
  "grad_norm",
  "update_ratio",
  "backprop_norm",
  "preact_mean",
  "preact_std",
  "act_mean",
  "act_std",
  "dead",
  "near_dead",
  "saturated",
)
# The grid on which slopes are profiled: wide enough that every registered
# activation has reached its tails, fine enough to place them to 1e-3.
_GRID_HALF_WIDTH = 40.0
_GRID_POINTS = 80_001


@jax.tree_util.register_static
class SiteActivation:
  """The activation a site applies, recorded next to its pre-activation.

  A pytree without leaves (the activation is static data), so it passes
  through `apply`'s collections, `jax.grad`'s aux output and `jax.jit`.
  """

  __slots__ = ("activation",)

  def __init__(self, activation: Any):
    self.activation = activation

  # By identity: a flax module or partial need not be hashable by value.
  def __eq__(self, other: object) -> bool:
    return isinstance(other, SiteActivation) and other.activation is self.activation

  def __hash__(self) -> int:
    return id(self.activation)

  def __repr__(self) -> str:
    return f"SiteActivation({self.activation!r})"


def record_preactivation(module: nn.Module, layer: str, z: Array, activation: Any = None) -> Array:
  """Records a hidden layer's pre-activation for diagnostics; returns z.

  Sows z (a no-op unless the 'preactivations' collection is mutable) and
  passes it through `module.perturb`, so the gradient with respect to z can be
  taken (a no-op unless a 'perturbations' collection is passed to `apply`).
  `activation` is the activation the site applies to z (a spec string,
  function or flax module), sown into the 'site_activations' collection; the
  slope statistics of the site are measured with it. Without it the site is
  measured with the model's activation.
  """
  name = layer + _SUFFIX
  if not module.is_initializing():
    # Perturbations sized for the init batch would be of no use; they are
    # made for the batch at hand by `zero_perturbations`.
    z = module.perturb(name, z, collection=PERTURBATIONS)
  module.sow(COLLECTION, name, z)
  if activation is not None:
    module.sow(ACTIVATIONS, layer + _ACTIVATION_SUFFIX, SiteActivation(activation))
  return z


def zero_perturbations(apply_fn: Callable[..., Any], params: Any, *args, **kwargs) -> Any:
  """Zeros shaped like every recorded pre-activation of `apply_fn(params, *args)`.

  Passing them as the 'perturbations' collection and differentiating with
  respect to them gives dL/dz at every activation site. Shapes only: nothing
  is computed.
  """

  def shapes(p):
    return apply_fn({"params": p}, *args, mutable=[PERTURBATIONS], **kwargs)[1]

  tree = jax.eval_shape(shapes, params).get(PERTURBATIONS, {})
  return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), tree)


def _recorded(
  tree: Mapping[str, Any], prefix: str = "", suffix: str = _SUFFIX
) -> Iterator[tuple[str, Any]]:
  """(layer path, value) for every recorded entry of a nested collection
  (pre-activations; with `suffix=_ACTIVATION_SUFFIX`, the sites' activations)."""
  for key, value in tree.items():
    if key.endswith(suffix):
      yield prefix + key.removesuffix(suffix), value
    elif isinstance(value, Mapping):
      yield from _recorded(value, f"{prefix}{key}/", suffix)


def site_activations(recorded: Mapping[str, Any]) -> dict[str, Any]:
  """{layer path: the activation the site applies} from the 'site_activations'
  collection (`record_preactivation`)."""
  return {
    name: values[0].activation for name, values in _recorded(recorded, suffix=_ACTIVATION_SUFFIX)
  }


# ----------------------------------------------------------------------------
# Slopes: what counts as small, and where the saturating tails are
# ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SlopeProfile:
  """How an activation's slopes are judged (see the module docstring).

  Attributes:
    max_slope: S, the reference max|f'|.
    threshold: eps * S; a slope is small when |f'| <= threshold.
    left_tail: entries with z < left_tail lie on the saturating left tail
      (-inf when there is none).
    right_tail: entries with z > right_tail lie on the saturating right tail
      (+inf when there is none).
  """

  max_slope: float
  threshold: float
  left_tail: float
  right_tail: float


def elementwise_derivative(activation: Callable[[Array], Array], z: Array) -> Array:
  """f'(z) for an elementwise activation, by one forward-mode product."""
  return jax.jvp(activation, (z,), (jnp.ones_like(z),))[1]


def _registered_facts(activation: Any) -> activations.Description | None:
  """The registry's facts about `activation`, if it is a registered one."""
  try:
    if isinstance(activation, str):
      return activations.describe(activation)
    name = getattr(activation, "__name__", None)
    if isinstance(name, str) and activations.get(name) is activation:
      return activations.describe(name)
  except ValueError:
    pass
  return None


def slope_profile(activation: Callable[[Array], Array] | str, eps: float) -> SlopeProfile:
  """The reference slope and saturating tails of an elementwise activation."""
  try:
    return _cached_profile(activation, float(eps))
  except TypeError:  # an unhashable callable
    return _cached_profile.__wrapped__(activation, float(eps))


@functools.lru_cache(maxsize=256)
def _cached_profile(activation: Callable[[Array], Array] | str, eps: float) -> SlopeProfile:
  facts = _registered_facts(activation)
  f = activations.get(activation) if isinstance(activation, str) else activation
  # Runs while the step is traced: evaluate now, on the host, not in the step.
  with jax.ensure_compile_time_eval():
    z = jnp.linspace(-_GRID_HALF_WIDTH, _GRID_HALF_WIDTH, _GRID_POINTS, dtype=jnp.float32)
    value, slope = jax.jvp(f, (z,), (jnp.ones_like(z),))
    z, value, slope = np.asarray(z), np.asarray(value), np.abs(np.asarray(slope))
  if facts is not None:
    max_slope = facts.max_slope
  else:
    max_slope = float(np.nanmax(slope, initial=0.0))
    # Still growing at the grid's edge: unbounded.
    inner = np.nanmax(slope[np.abs(z) <= _GRID_HALF_WIDTH / 2], initial=0.0)
    if max_slope > 1.5 * inner:
      max_slope = math.inf
  if not (math.isfinite(max_slope) and max_slope > 0):
    max_slope = 1.0
  threshold = eps * max_slope
  large = np.flatnonzero(slope > threshold)
  if large.size == 0:
    return SlopeProfile(max_slope, threshold, -math.inf, math.inf)

  def saturates(side: str, beyond: np.ndarray, edge: int, mid: int) -> bool:
    if facts is not None:
      on_side = facts.saturates in (side, "both")
    else:  # f' at the edge is small and decaying, not a small constant
      on_side = slope[edge] <= threshold and (slope[edge] == 0 or slope[edge] <= 0.5 * slope[mid])
    # A rectifier's zero side is where its units are off, not saturated.
    return bool(on_side and beyond.any() and not np.all(value[beyond] == 0))

  lo, hi = large[0], large[-1]
  quarter = _GRID_POINTS // 4
  left = saturates("left", np.arange(lo), 0, quarter)
  right = saturates("right", np.arange(hi + 1, z.size), z.size - 1, z.size - 1 - quarter)
  return SlopeProfile(
    max_slope,
    threshold,
    float(z[lo]) if left else -math.inf,
    float(z[hi]) if right else math.inf,
  )


def _unit_axes(x: Array) -> tuple[int, ...]:
  return tuple(range(x.ndim - 1))


def dead_fraction(derivative: Array, threshold: float) -> Array:
  """Fraction of units (last axis) whose |f'| <= threshold everywhere in the batch."""
  small = jnp.abs(derivative) <= threshold
  return jnp.mean(jnp.all(small, axis=_unit_axes(derivative)).astype(jnp.float32))


def near_dead_fraction(derivative: Array, threshold: float) -> Array:
  """Fraction of units (last axis) whose mean |f'| over the batch is <= threshold."""
  mean = jnp.mean(jnp.abs(derivative), axis=_unit_axes(derivative))
  return jnp.mean((mean <= threshold).astype(jnp.float32))


def saturated_fraction(z: Array, derivative: Array, profile: SlopeProfile) -> Array:
  """Fraction of entries with |f'| <= threshold on a saturating tail."""
  tail = (z < profile.left_tail) | (z > profile.right_tail)
  small = jnp.abs(derivative) <= profile.threshold
  return jnp.mean((small & tail).astype(jnp.float32))


def _elementwise(activation: Any) -> Callable[[Array], Array] | None:
  """`activation` as a plain function of z, or None for a flax module
  (linen or NNX)."""
  if isinstance(activation, str):
    activation = activations.get(activation)
  if isinstance(activation, (nn.Module, nnx.Module)) or activations.is_module(activation):
    return None
  return activation


def activation_stats(
  preactivations: Mapping[str, Any],
  activation: Any,
  eps: float,
  applied: Mapping[str, Any] | None = None,
) -> dict[str, dict[str, Array]]:
  """{stat: {layer: value}} for every recorded pre-activation.

  Each site is measured with the activation it recorded (`applied`: the
  'site_activations' collection, sown next to 'preactivations'); `activation` (the
  model's activation field: a spec string, function or flax module) is used
  for sites that recorded none, and None leaves them with the pre-activation
  statistics alone. `eps` is the relative slope threshold. Stats that do not
  apply (see the module docstring) are left out rather than reported empty.
  """
  stats: dict[str, dict[str, Array]] = {
    k: {}
    for k in ("preact_mean", "preact_std", "act_mean", "act_std", "dead", "near_dead", "saturated")
  }
  recorded = list(_recorded(preactivations))
  if not recorded:
    warnings.warn(
      "The model recorded no pre-activations, so diagnostics hold no activation"
      " statistics (dead, saturated, act_mean, backprop_norm, ...), only kernel"
      " norms. Apply the activation through actlab.models.ActivationSites, or"
      " pass each pre-activation through actlab.diagnostics.record_preactivation.",
      stacklevel=2,
    )
  applied = site_activations(applied or {})
  unknown = [name for name, _ in recorded if name not in applied]
  if activation is None and unknown:
    warnings.warn(
      f"The sites {', '.join(unknown)} record no activation and the model has no"
      " `activation` field, so they get only pre-activation statistics. Pass"
      " activation= to actlab.diagnostics.record_preactivation.",
      stacklevel=2,
    )
  for name, values in recorded:
    z = values[0].astype(jnp.float32)
    stats["preact_mean"][name] = jnp.mean(z)
    stats["preact_std"][name] = jnp.std(z)
    site_activation = applied.get(name, activation)
    f = None if site_activation is None else _elementwise(site_activation)
    if f is None:
      continue
    a, d = jax.jvp(f, (z,), (jnp.ones_like(z),))
    stats["act_mean"][name] = jnp.mean(a)
    stats["act_std"][name] = jnp.std(a)
    if a.shape != z.shape:  # glu and the like: f' is not elementwise
      continue
    profile = slope_profile(site_activation, eps)
    stats["dead"][name] = dead_fraction(d, profile.threshold)
    stats["near_dead"][name] = near_dead_fraction(d, profile.threshold)
    stats["saturated"][name] = saturated_fraction(z, d, profile)
  return {k: v for k, v in stats.items() if v}


def site_stats(
  preactivations: Mapping[str, Array], sites: Mapping[str, Any], eps: float
) -> dict[str, dict[str, Array]]:
  """`activation_stats` from {layer: z} and {layer: the activation applied to
  z}, for models that record their sites without flax.linen's collections
  (`actlab.nnx`)."""
  return activation_stats(
    {name + _SUFFIX: (z,) for name, z in preactivations.items()},
    None,
    eps,
    {name + _ACTIVATION_SUFFIX: (SiteActivation(f),) for name, f in sites.items()},
  )


def l2_norm(x: Array) -> Array:
  """||x||_2 in float32 without underflow or overflow.

  Squaring entries of 1e-20 (or 1e20) leaves float32's range although the
  norm itself is well inside it; scaling by max|x| first keeps every square
  in [0, 1], so the result is exact to float32 rounding for any finite x.
  """
  x = jnp.abs(x.astype(jnp.float32))
  scale = jnp.max(x, initial=0.0)
  safe = jnp.where((scale > 0) & jnp.isfinite(scale), scale, 1.0)
  norm = scale * jnp.sqrt(jnp.sum(jnp.square(x / safe)))
  return jnp.where(jnp.isinf(scale), scale, norm)  # an infinite entry: inf, not nan


def backprop_norms(perturbation_grads: Mapping[str, Any]) -> dict[str, Array]:
  """{layer: ||dL/dz||} from the gradient with respect to the perturbations."""
  return {name: l2_norm(g) for name, g in _recorded(perturbation_grads)}


def kernel_norms(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Array]:
  """{layer path: ||kernel||} for every layer with a kernel, at any depth."""
  out = {}
  for name, p in tree.items():
    if not isinstance(p, Mapping):
      continue
    if "kernel" in p and not isinstance(p["kernel"], Mapping):
      out[prefix + name] = l2_norm(p["kernel"])
    out.update(kernel_norms(p, f"{prefix}{name}/"))
  return out


def gradient_stats(params: Any, grads: Any, new_params: Any) -> dict[str, dict[str, Array]]:
  """Per-layer gradient norms and update-to-parameter norm ratios."""
  updates = jax.tree.map(jnp.subtract, new_params, params)
  p, u = kernel_norms(params), kernel_norms(updates)
  return {
    "grad_norm": kernel_norms(grads),
    "update_ratio": {k: u[k] / jnp.maximum(p[k], 1e-30) for k in p},
  }


def relative_first_layer_gradient(grad_norms: Mapping[str, float], order: list[str]) -> float:
  """||dL/dW_first|| / ||dL/dW_last|| for layers in forward order."""
  return float(grad_norms[order[0]]) / float(grad_norms[order[-1]])


def collapse_linear(params: Mapping[str, Any]) -> tuple[Array, Array]:
  """The single affine map (W, b) that an all-identity MLP computes.

  For layers x -> x W_i + b_i applied in order (sorted layer names are forward
  order, as `actlab.models.MLP` names them), the composition is
  x -> x (W_1 ... W_n) + b with b folded through the later kernels.
  """
  names = sorted(k for k, p in params.items() if isinstance(p, Mapping) and "kernel" in p)
  w = params[names[0]]["kernel"]
  b = params[names[0]]["bias"]
  for name in names[1:]:
    w = w @ params[name]["kernel"]
    b = b @ params[name]["kernel"] + params[name]["bias"]
  return w, b
