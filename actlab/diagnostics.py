"""What an activation does inside a network, measured in the train step.

All functions are pure and run inside the jitted step; the step returns their
results as device arrays, and the host reads them at the next logging point.
With `config.diagnostics` off, nothing here is traced and the model's `sow`
calls are no-ops, so the step compiles exactly as without diagnostics.

Definitions (per layer, over one training batch):
  grad_norm      ||dL/dW|| of the layer's kernel
  update_ratio   ||W_new - W|| / ||W||: how far one step moves the kernel
  act_mean/std   mean and std of the activation's output
  saturated      fraction of (example, position, unit) entries whose
                 |f'(pre-activation)| < threshold
  dead           fraction of units (channels of a conv, neurons of a dense
                 layer) whose f'(pre-activation) is 0 for every example and
                 position in the batch: no gradient reaches their weights
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp

from actlab.activations import is_module

Array = jax.Array

COLLECTION = "preactivations"
# Sown names must differ from the layers' own (submodule) names.
_SUFFIX = ":preactivation"


def sow_preactivation(module: Any, layer: str, z: Array) -> None:
  """Records a hidden layer's pre-activation when diagnostics are collected."""
  module.sow(COLLECTION, layer + _SUFFIX, z)


def elementwise_derivative(activation: Callable[[Array], Array], z: Array) -> Array:
  """f'(z) for an elementwise activation, by one forward-mode product."""
  return jax.jvp(activation, (z,), (jnp.ones_like(z),))[1]


def saturated_fraction(derivative: Array, threshold: float) -> Array:
  """Fraction of entries where |f'| < threshold."""
  return jnp.mean((jnp.abs(derivative) < threshold).astype(jnp.float32))


def dead_fraction(derivative: Array) -> Array:
  """Fraction of units (last axis) whose f' is 0 everywhere in the batch."""
  dead = jnp.all(derivative == 0, axis=tuple(range(derivative.ndim - 1)))
  return jnp.mean(dead.astype(jnp.float32))


def activation_stats(
  preactivations: Mapping[str, Any],
  activation: Callable[..., Array],
  threshold: float,
) -> dict[str, dict[str, Array]]:
  """{stat: {layer: value}} for every sown pre-activation.

  Learnable activations (flax modules) have parameters of their own, so f'
  is not a function of z alone; for them only the pre-activation statistics
  are reported.
  """
  stats: dict[str, dict[str, Array]] = {
    "preact_mean": {},
    "preact_std": {},
    "act_mean": {},
    "act_std": {},
    "saturated": {},
    "dead": {},
  }
  for sown, (z,) in preactivations.items():
    name = sown.removesuffix(_SUFFIX)
    z = z.astype(jnp.float32)
    stats["preact_mean"][name] = jnp.mean(z)
    stats["preact_std"][name] = jnp.std(z)
    if is_module(activation):
      continue
    a = activation(z)
    d = elementwise_derivative(activation, z)
    stats["act_mean"][name] = jnp.mean(a)
    stats["act_std"][name] = jnp.std(a)
    stats["saturated"][name] = saturated_fraction(d, threshold)
    stats["dead"][name] = dead_fraction(d)
  return {k: v for k, v in stats.items() if v}


def kernel_norms(tree: Mapping[str, Any]) -> dict[str, Array]:
  """{layer: ||kernel||} for every top-level layer that has a kernel."""
  return {
    name: jnp.sqrt(jnp.sum(jnp.square(p["kernel"].astype(jnp.float32))))
    for name, p in tree.items()
    if isinstance(p, Mapping) and "kernel" in p
  }


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
