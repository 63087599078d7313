"""Learnable and stochastic activations as small flax.linen modules.

`get('prelu')` returns `functools.partial(PReLU, mode=..., init_slope=...)`, a
module factory that `actlab.models.LeNet5` instantiates once per activation
site, each with its own parameters. Every module's `__call__` takes
`(x, deterministic=True)`; only RReLU uses the flag.

- PReLU: one slope shared by the whole layer ('shared'), one per channel
  ('channel', the last axis), or one per element ('element', every axis but
  the batch). The slope is initialised to `init_slope`.
- SwishBeta: x * sigmoid(beta x) with a learnable beta (shared or per channel).
- Maxout: the max over groups of k consecutive units of the last axis, so the
  layer before it must produce k times the units (`width_multiplier` says k).
  Maxout has no parameters of its own: its k pieces are the k-fold wider
  Conv/Dense kernel. For a Dense layer with n inputs and m outputs that is
  k (n + 1) m parameters instead of (n + 1) m.
- RReLU: leaky ReLU whose negative slope is drawn uniformly from
  [lower, upper] per element while training, and is (lower + upper) / 2 at
  evaluation. Training draws from the 'rrelu' RNG stream:
  `model.apply(variables, x, train=True, rngs={'rrelu': key})`; evaluation
  (the default) needs no RNG.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from actlab.activations.metadata import Facts, inf
from actlab.activations.params import Param, at_least, finite, nonnegative, positive
from actlab.activations.rectifiers import _leaky_facts
from actlab.activations.registry import Entry, register

Array = jax.Array

MODES = ("shared", "channel", "element")


def _broadcastable(p: Array, x: Array) -> Array:
  """p with leading axes of size 1 added, so p * x broadcasts explicitly."""
  return p.astype(x.dtype).reshape((1,) * (x.ndim - p.ndim) + p.shape)


def param_shape(mode: str, shape: Sequence[int]) -> tuple[int, ...]:
  """The shape of a per-`mode` parameter for inputs of `shape` (batch first)."""
  if mode == "shared":
    return ()
  if mode == "channel":
    return (shape[-1],)
  if mode == "element":
    return tuple(shape[1:])
  raise ValueError(f"mode must be one of {MODES}, got {mode!r}.")


class PReLU(nn.Module):
  """x for x >= 0, a * x below with a learned (He et al., 2015, 'Delving deep
  into rectifiers'). f'(0) = 1, as for leaky_relu."""

  mode: str = "channel"
  init_slope: float = 0.25
  layer_name: ClassVar[str] = "prelu"

  @nn.compact
  def __call__(self, x: Array, deterministic: bool = True) -> Array:
    del deterministic  # the same function in training and evaluation
    a = self.param(
        "alpha", nn.initializers.constant(self.init_slope),
        param_shape(self.mode, x.shape),
    )
    return prelu_formula(x, a)


def prelu_formula(x: Array, a: Array) -> Array:
  """PReLU with slope(s) `a` (shared, per channel or per element); the
  flax.linen and Flax NNX modules both compute this."""
  return jnp.where(x >= 0, x, _broadcastable(a, x) * x)


def swish_beta_formula(x: Array, beta: Array) -> Array:
  """x * sigmoid(beta x) with beta shared, per channel or per element."""
  return x * jax.nn.sigmoid(_broadcastable(beta, x) * x)


def maxout_formula(x: Array, k: int) -> Array:
  """The max over each group of k consecutive units of the last axis."""
  if x.shape[-1] % k:
    raise ValueError(
        f"maxout with k={k} needs a last axis divisible by {k}, got"
        f" shape {x.shape}; make the layer before it produce k times the units."
    )
  return x.reshape(*x.shape[:-1], x.shape[-1] // k, k).max(axis=-1)


def rrelu_formula(
    x: Array, lower: float, upper: float, key: Array | None
) -> Array:
  """RReLU: slope ~ U(lower, upper) per element with a key (training), the
  mean slope without one (evaluation)."""
  if key is None:
    slope = jnp.asarray(0.5 * (lower + upper), x.dtype)
  else:
    slope = jax.random.uniform(key, x.shape, x.dtype, lower, upper)
  return jnp.where(x >= 0, x, slope * x)


class SwishBeta(nn.Module):
  """x * sigmoid(beta x) with beta learned (Ramachandran, Zoph & Le, 2017,
  'Searching for activation functions'). beta = 1 is silu."""

  mode: str = "shared"
  init_beta: float = 1.0
  layer_name: ClassVar[str] = "swish_beta"

  @nn.compact
  def __call__(self, x: Array, deterministic: bool = True) -> Array:
    del deterministic
    beta = self.param(
        "beta", nn.initializers.constant(self.init_beta),
        param_shape(self.mode, x.shape),
    )
    return swish_beta_formula(x, beta)


class Maxout(nn.Module):
  """max over each group of k consecutive units of the last axis (Goodfellow
  et al., 2013, 'Maxout networks'). Needs k times the units before it."""

  k: int = 2
  layer_name: ClassVar[str] = "maxout"

  @property
  def width_multiplier(self) -> int:
    return self.k

  @nn.compact
  def __call__(self, x: Array, deterministic: bool = True) -> Array:
    del deterministic
    return maxout_formula(x, self.k)


class RReLU(nn.Module):
  """Randomized leaky ReLU (Xu et al., 2015, 'Empirical evaluation of
  rectified activations in convolutional network'): negative slope
  ~ U(lower, upper) per element in training, (lower + upper) / 2 in
  evaluation. Training draws from the 'rrelu' RNG stream."""

  lower: float = 1.0 / 8.0
  upper: float = 1.0 / 3.0
  layer_name: ClassVar[str] = "rrelu"

  @nn.compact
  def __call__(self, x: Array, deterministic: bool = True) -> Array:
    key = None if deterministic else self.make_rng("rrelu")
    return rrelu_formula(x, self.lower, self.upper, key)


_MODE = lambda default: Param(default, kind=str, choices=MODES)  # noqa: E731
_SILU_MIN = -0.27846454276107379511
_SILU_MAX_SLOPE = (1.099839320128866917, 2.3993572805154676678)

register(Entry(
    "prelu", kind="module", module=PReLU,
    params={"mode": _MODE("channel"),
            "init_slope": Param(0.25, check=nonnegative, requirement=">= 0")},
    kinks=lambda mode, init_slope: {0.0: 1.0} if init_slope != 1 else {},
    summary="x if x >= 0 else a * x, a learned",
    facts=lambda mode, init_slope: _leaky_facts(init_slope),
))

register(Entry(
    "swish_beta", kind="module", module=SwishBeta,
    params={"mode": _MODE("shared"),
            "init_beta": Param(1.0, check=positive, requirement="> 0")},
    summary="x * sigmoid(beta x), beta learned",
    facts=lambda mode, init_beta: Facts(
        (_SILU_MIN / init_beta, inf), False, "Cinf", True,
        _SILU_MAX_SLOPE[0], _SILU_MAX_SLOPE[1] / init_beta, "left"),
))

register(Entry(
    "maxout", kind="module", module=Maxout,
    params={"k": Param(2, kind=int, check=at_least(2))},
    width=lambda k: k,
    summary="max of k pieces (the layer before is k times wider)",
    facts=lambda k: Facts((-inf, inf), True, "C0", True, 1.0, 1.0, "none"),
))


def _rrelu_check(lower: float, upper: float) -> str:
  if not 0 <= lower <= upper:
    return f"needs 0 <= lower <= upper, got lower={lower}, upper={upper}."
  return ""


register(Entry(
    "rrelu", kind="module", module=RReLU,
    params={"lower": Param(1.0 / 8.0, check=nonnegative, requirement=">= 0"),
            "upper": Param(1.0 / 3.0, check=finite)},
    check=_rrelu_check,
    kinks=lambda lower, upper: {0.0: 1.0},
    summary="leaky relu, slope ~ U(lower, upper) in training, the mean in evaluation",
    facts=lambda lower, upper: _leaky_facts(0.5 * (lower + upper)),
))
