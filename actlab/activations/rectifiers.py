"""Rectifiers and piecewise activations: relu and its relatives, shrinkage.

At a kink the derivative is the one the common frameworks use, recorded in
`kinks`; where branches are picked with `jnp.where` (not `minimum`/`maximum`,
whose autodiff splits the gradient 50/50 at ties).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from actlab.activations import numerics as nx
from actlab.activations.metadata import Facts, inf
from actlab.activations.params import Param, nonnegative, positive
from actlab.activations.registry import Entry, register

Array = jax.Array

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def relu(x: Array) -> Array:
  """max(x, 0) (Nair & Hinton, 2010; Glorot, Bordes & Bengio, 2011).
  f'(0) is taken as 0, as in jax.nn and PyTorch. Integers stay integers."""
  return jnp.maximum(x, 0)


register(Entry(
    "relu", relu, lambda x: nx.step(x, x > 0, 1.0, 0.0),
    kinks=lambda: {0.0: 0.0}, summary="max(x, 0)", integer=True,
    facts=Facts((0.0, inf), True, "C0", False, 1.0, 1.0, "left"),
))


def relu6(x: Array) -> Array:
  """min(max(x, 0), 6) (Krizhevsky, 2010, 'Convolutional deep belief networks
  on CIFAR-10'; Howard et al., 2017, MobileNets). f' = 0 at both kinks."""
  return jnp.minimum(jnp.maximum(x, 0.0), 6.0)


register(Entry(
    "relu6", relu6, lambda x: nx.step(x, (x > 0) & (x < 6), 1.0, 0.0),
    kinks=lambda: {0.0: 0.0, 6.0: 0.0}, summary="min(max(x, 0), 6)",
    facts=Facts((0.0, 6.0), True, "C0", False, 1.0, 3.0, "both"),
))


def leaky_relu(x: Array, negative_slope: float = 0.01) -> Array:
  """x for x >= 0, negative_slope * x below (Maas, Hannun & Ng, 2013,
  'Rectifier nonlinearities improve neural network acoustic models').
  f'(0) = 1."""
  return jnp.where(x >= 0, x, negative_slope * x)


def _leaky_facts(negative_slope: float) -> Facts:
  a = negative_slope
  return Facts(
      (-inf if a > 0 else 0.0, inf), True, "Cinf" if a == 1 else "C0", a > 0,
      max(1.0, a), 1.0 if a <= 1 else -1.0, "left" if a == 0 else "none",
  )


register(Entry(
    "leaky_relu", leaky_relu,
    lambda x, negative_slope: nx.step(x, x >= 0, 1.0, negative_slope),
    params={"negative_slope": Param(0.01, check=nonnegative, requirement=">= 0")},
    kinks=lambda negative_slope: {0.0: 1.0} if negative_slope != 1 else {},
    summary="x if x >= 0 else negative_slope * x", facts=_leaky_facts,
))


def _elu(x: Array, alpha: float = 1.0) -> tuple[Array, Array]:
  neg = jnp.where(x > 0, 0.0, x)
  # alpha * exp(x), not alpha * (expm1(x) + 1): the latter is 0 at x = -40
  # in float64, where the true value is 4.25e-18.
  return (jnp.where(x > 0, x, alpha * jnp.expm1(neg)),
          jnp.where(x > 0, 1.0, alpha * jnp.exp(neg)))


def elu(x: Array, alpha: float = 1.0) -> Array:
  """x for x > 0, alpha * (exp(x) - 1) below (Clevert, Unterthiner &
  Hochreiter, 2016, 'Fast and accurate deep network learning by exponential
  linear units'). At 0 the derivative is taken from the left, alpha; with
  alpha = 1 the function is C1 and there is no kink."""
  return _elu(x, alpha)[0]


register(Entry(
    "elu", elu, value_and_derivative=_elu,
    params={"alpha": Param(1.0, check=positive, requirement="> 0")},
    kinks=lambda alpha: {0.0: alpha} if alpha != 1 else {},
    summary="x if x > 0 else alpha * (exp(x) - 1)",
    facts=lambda alpha: Facts(
        (-alpha, inf), True, "C1" if alpha == 1 else "C0", True,
        max(1.0, alpha), 0.0 if alpha > 1 else 1.0, "left"),
))


def _celu(x: Array, alpha: float = 1.0) -> tuple[Array, Array]:
  neg = jnp.where(x > 0, 0.0, x) / alpha
  return (jnp.where(x > 0, x, alpha * jnp.expm1(neg)),
          jnp.where(x > 0, 1.0, jnp.exp(neg)))


def celu(x: Array, alpha: float = 1.0) -> Array:
  """x for x > 0, alpha * (exp(x / alpha) - 1) below (Barron, 2017,
  'Continuously differentiable exponential linear units'): C1 for every
  alpha."""
  return _celu(x, alpha)[0]


register(Entry(
    "celu", celu, value_and_derivative=_celu,
    params={"alpha": Param(1.0, check=positive, requirement="> 0")},
    summary="x if x > 0 else alpha * (exp(x / alpha) - 1)",
    facts=lambda alpha: Facts((-alpha, inf), True, "C1", True, 1.0, 1.0, "left"),
))


def _selu(x: Array) -> tuple[Array, Array]:
  neg = jnp.where(x > 0, 0.0, x)
  a, s = _SELU_ALPHA, _SELU_SCALE
  return (jnp.where(x > 0, s * x, (s * a) * jnp.expm1(neg)),
          jnp.where(x > 0, s, (s * a) * jnp.exp(neg)))


def selu(x: Array) -> Array:
  """scale * elu(x, alpha) with the self-normalising constants of Klambauer
  et al., 2017, 'Self-normalizing neural networks'."""
  return _selu(x)[0]


register(Entry(
    "selu", selu, value_and_derivative=_selu,
    kinks=lambda: {0.0: _SELU_SCALE * _SELU_ALPHA},
    summary="scale * elu(x, alpha)",
    facts=Facts((-_SELU_SCALE * _SELU_ALPHA, inf), True, "C0", True,
                _SELU_SCALE * _SELU_ALPHA, 0.0, "left"),
))


def hard_sigmoid(x: Array) -> Array:
  """relu6(x + 3) / 6 (Howard et al., 2019, 'Searching for MobileNetV3'; the
  form of jax.nn, Keras 3 and torch.nn.Hardsigmoid)."""
  return relu6(x + 3.0) / 6.0


register(Entry(
    "hard_sigmoid", hard_sigmoid,
    lambda x: nx.step(x, (x > -3) & (x < 3), 1.0 / 6.0, 0.0),
    aliases=("hardsigmoid",), kinks=lambda: {-3.0: 0.0, 3.0: 0.0},
    summary="relu6(x + 3) / 6",
    facts=Facts((0.0, 1.0), True, "C0", False, 1.0 / 6.0, 0.0, "both"),
))


def hard_silu(x: Array) -> Array:
  """x * hard_sigmoid(x) (Howard et al., 2019, MobileNetV3: hard-swish)."""
  return nx.finite_below(x) * hard_sigmoid(x)


register(Entry(
    "hard_silu", hard_silu,
    lambda x: jnp.where(x <= -3, 0.0, jnp.where(x >= 3, 1.0, (2.0 * x + 3.0) / 6.0)),
    aliases=("hard_swish", "hardswish"), kinks=lambda: {-3.0: 0.0, 3.0: 1.0},
    summary="x * relu6(x + 3) / 6",
    facts=Facts((-0.375, inf), False, "C0", True, 1.5, 3.0, "left"),
))


def hard_tanh(x: Array) -> Array:
  """clip(x, -1, 1) (Collobert, 2004, 'Large scale machine learning');
  f' = 1 at both kinks, as in jax.nn. Integers stay integers."""
  return jnp.where(x > 1, 1, jnp.where(x < -1, -1, x))


register(Entry(
    "hard_tanh", hard_tanh, lambda x: nx.step(x, jnp.abs(x) <= 1, 1.0, 0.0),
    aliases=("hardtanh",), kinks=lambda: {-1.0: 1.0, 1.0: 1.0},
    summary="clip(x, -1, 1)", integer=True,
    facts=Facts((-1.0, 1.0), True, "C0", True, 1.0, 0.0, "both"),
))


def sparse_plus(x: Array) -> Array:
  """0 for x <= -1, (x + 1)^2 / 4 between, x for x >= 1 (Blondel et al.,
  2020, 'Learning with Fenchel-Young losses'). C1: no kinks."""
  return jnp.where(x <= -1, 0.0, jnp.where(x >= 1, x, 0.25 * jnp.square(x + 1.0)))


register(Entry(
    "sparse_plus", sparse_plus,
    lambda x: jnp.where(x <= -1, 0.0, jnp.where(x >= 1, 1.0, 0.5 * (x + 1.0))),
    summary="0 | (x + 1)^2 / 4 | x",
    facts=Facts((0.0, inf), True, "C1", False, 1.0, 1.0, "left"),
))


def sparse_sigmoid(x: Array) -> Array:
  """clip((x + 1) / 2, 0, 1), the derivative of sparse_plus (Blondel et al.,
  2020). f' = 0 at both kinks."""
  return 0.5 * jnp.clip(x + 1.0, 0.0, 2.0)


register(Entry(
    "sparse_sigmoid", sparse_sigmoid,
    lambda x: nx.step(x, jnp.abs(x) < 1, 0.5, 0.0),
    kinks=lambda: {-1.0: 0.0, 1.0: 0.0}, summary="clip((x + 1) / 2, 0, 1)",
    facts=Facts((0.0, 1.0), True, "C0", False, 0.5, 0.0, "both"),
))

_LAMBDA = {"threshold": Param(0.5, check=positive, requirement="> 0")}


def hard_shrink(x: Array, threshold: float = 0.5) -> Array:
  """x where |x| > threshold, else 0 (Keras hard_shrink, torch.nn.Hardshrink;
  hard thresholding, Donoho & Johnstone, 1994). Jumps at +-threshold."""
  # x * 0 is 0 for the finite inputs of the inner branch and NaN for NaN.
  return jnp.where(jnp.abs(x) > threshold, x, x * 0.0)


register(Entry(
    "hard_shrink", hard_shrink,
    lambda x, threshold: jnp.where(jnp.abs(x) > threshold, 1.0, x * 0.0),
    params=_LAMBDA, aliases=("hardshrink",),
    kinks=lambda threshold: {-threshold: 0.0, threshold: 0.0},
    summary="x if |x| > threshold else 0",
    facts=lambda threshold: Facts((-inf, inf), True, "discontinuous", True,
                                  1.0, threshold + 1.0, "none"),
))


def soft_shrink(x: Array, threshold: float = 0.5) -> Array:
  """sign(x) max(|x| - threshold, 0) (Keras soft_shrink, torch.nn.Softshrink;
  soft thresholding, Donoho, 1995, 'De-noising by soft-thresholding')."""
  return jnp.where(x > threshold, x - threshold,
                   jnp.where(x < -threshold, x + threshold, x * 0.0))


register(Entry(
    "soft_shrink", soft_shrink,
    lambda x, threshold: jnp.where(jnp.abs(x) > threshold, 1.0, x * 0.0),
    params=_LAMBDA, aliases=("softshrink",),
    kinks=lambda threshold: {-threshold: 0.0, threshold: 0.0},
    summary="sign(x) * max(|x| - threshold, 0)",
    facts=lambda threshold: Facts((-inf, inf), True, "C0", True, 1.0,
                                  threshold + 1.0, "none"),
))


def threshold(x: Array, threshold: float = 1.0, value: float = 0.0) -> Array:
  """x where x > threshold, else value (Keras threshold, torch.nn.Threshold).
  The defaults are the thresholded ReLU of Konda, Memisevic & Krueger, 2015,
  'Zero-bias autoencoders and the benefits of co-adapting features'."""
  return nx.keep_nan(x, jnp.where(x > threshold, x, value))


def _threshold_facts(threshold: float, value: float) -> Facts:
  lo = min(threshold, value)
  at_zero = 0.0 if threshold < 0 else value
  return Facts(
      (lo, inf), value <= threshold,
      "C0" if value == threshold else "discontinuous",
      at_zero == 0 and lo < 0, 1.0, threshold + 1.0, "left",
  )


register(Entry(
    "threshold", threshold,
    lambda x, threshold, value: nx.step(x, x > threshold, 1.0, 0.0),
    params={"threshold": Param(1.0), "value": Param(0.0)},
    kinks=lambda threshold, value: {threshold: 0.0},
    summary="x if x > threshold else value", facts=_threshold_facts,
))


def abs_(x: Array) -> Array:
  """|x|, absolute-value rectification (Jarrett et al., 2009, 'What is the
  best multi-stage architecture for object recognition?'). f'(0) = 0.
  Integers stay integers."""
  return jnp.abs(x)


register(Entry(
    "abs", abs_, jnp.sign, kinks=lambda: {0.0: 0.0}, summary="|x|", integer=True,
    facts=Facts((0.0, inf), False, "C0", False, 1.0, 1.0, "none"),
))


def _sqnl(x: Array) -> tuple[Array, Array]:
  c = jnp.clip(x, -2.0, 2.0)
  a = jnp.abs(c)
  return c - 0.25 * c * a, 1.0 - 0.5 * a


def sqnl(x: Array) -> Array:
  """Square nonlinearity: x - x|x|/4 on [-2, 2], +-1 outside (Wuraola &
  Patel, 2018, 'SQNL: a new computationally efficient activation
  function'). C1: no kinks."""
  return _sqnl(x)[0]


register(Entry(
    "sqnl", sqnl, value_and_derivative=_sqnl, summary="x - x|x|/4 on [-2, 2]",
    facts=Facts((-1.0, 1.0), True, "C1", True, 1.0, 0.0, "both"),
))
