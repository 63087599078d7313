"""Elementwise activations: each formula beside its analytic derivative.

Formulas are written for the tails, not only the middle: derivatives use
forms such as sigmoid(x) * sigmoid(-x) instead of s * (1 - s), which rounds to
zero long before the true value underflows. Half-precision inputs are computed
in float32 and rounded once at the end, so intermediate terms such as x**3
cannot overflow float16.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.scipy.special import erfc

from actlab.activations.registry import Entry, Param, nonnegative, positive, register

Array = jax.Array

_SQRT_2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_GELU_CUBIC = 0.044715


def half_as_f32(f: Callable[..., Array]) -> Callable[..., Array]:
  """Evaluates `f` in float32 for float16/bfloat16 inputs, rounding once."""

  @functools.wraps(f)
  def wrapped(x: Array, **params) -> Array:
    x = jnp.asarray(x)
    if x.dtype in (jnp.float16, jnp.bfloat16):
      return f(x.astype(jnp.float32), **params).astype(x.dtype)
    return f(x, **params)

  return wrapped


def _sech2(x: Array) -> Array:
  """1 - tanh(x)**2 without cancellation: 4 e / (1 + e)**2, e = exp(-2|x|)."""
  e = jnp.exp(-2.0 * jnp.abs(x))
  return 4.0 * e / jnp.square(1.0 + e)


# --- identity -----------------------------------------------------------------


def identity(x: Array) -> Array:
  """f(x) = x. Stacks of linear layers with it collapse into one linear map."""
  return jnp.asarray(x)


register(
    Entry(
        "identity",
        identity,
        lambda x: jnp.ones_like(x),
        aliases=("linear",),
        summary="x",
    )
)

# --- sigmoid ------------------------------------------------------------------


def sigmoid(x: Array) -> Array:
  """Logistic sigmoid 1 / (1 + exp(-x)); f' = f(x) f(-x) never exceeds 1/4."""
  return jax.nn.sigmoid(x)


register(
    Entry(
        "sigmoid",
        sigmoid,
        lambda x: jax.nn.sigmoid(x) * jax.nn.sigmoid(-x),
        aliases=("logistic",),
        summary="1 / (1 + exp(-x))",
    )
)

# --- tanh ---------------------------------------------------------------------


def tanh(x: Array) -> Array:
  """Hyperbolic tangent; f'(0) = 1 but f' -> 0 as |x| grows (saturation)."""
  return jnp.tanh(x)


register(Entry("tanh", tanh, _sech2, summary="tanh(x)"))

# --- relu ---------------------------------------------------------------------


def relu(x: Array) -> Array:
  """max(x, 0) (Nair & Hinton, 2010). f'(0) is taken as 0, as in jax.nn."""
  return jnp.maximum(x, 0)


register(
    Entry(
        "relu",
        relu,
        lambda x: (x > 0).astype(jnp.result_type(x, jnp.float32)),
        kinks=lambda: {0.0: 0.0},
        summary="max(x, 0)",
    )
)

# --- leaky_relu ---------------------------------------------------------------


def leaky_relu(x: Array, negative_slope: float = 0.01) -> Array:
  """x for x >= 0, negative_slope * x below (Maas et al., 2013). f'(0) = 1."""
  return jnp.where(x >= 0, x, negative_slope * x)


register(
    Entry(
        "leaky_relu",
        leaky_relu,
        lambda x, negative_slope: jnp.where(x >= 0, 1.0, negative_slope).astype(
            jnp.result_type(x, jnp.float32)
        ),
        params={
            "negative_slope": Param(0.01, check=nonnegative, requirement=">= 0")
        },
        kinks=lambda negative_slope: {0.0: 1.0} if negative_slope != 1 else {},
        summary="x if x >= 0 else negative_slope * x",
    )
)

# --- elu ----------------------------------------------------------------------


def elu(x: Array, alpha: float = 1.0) -> Array:
  """x for x > 0, alpha * (exp(x) - 1) below (Clevert et al., 2015).

  At 0 the derivative is taken from the left, alpha; with alpha = 1 the
  function is C1 and there is no kink.
  """
  # where, not minimum: minimum splits the gradient 50/50 at x = 0.
  return jnp.where(x > 0, x, alpha * jnp.expm1(jnp.where(x > 0, 0.0, x)))


register(
    Entry(
        "elu",
        half_as_f32(elu),
        half_as_f32(
            lambda x, alpha: jnp.where(x > 0, 1.0, alpha * jnp.exp(jnp.where(x > 0, 0.0, x)))
        ),
        params={"alpha": Param(1.0, check=positive, requirement="> 0")},
        kinks=lambda alpha: {0.0: alpha} if alpha != 1 else {},
        summary="x if x > 0 else alpha * (exp(x) - 1)",
    )
)

# --- gelu ---------------------------------------------------------------------


def gelu(x: Array, approximate: bool = False) -> Array:
  """x * Phi(x), Phi the standard normal CDF (Hendrycks & Gimpel, 2016).

  `approximate=True` is the tanh form
  0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). Unlike `jax.nn.gelu`, the
  default here is the exact form, as in PyTorch and Keras.
  """
  if approximate:
    inner = _SQRT_2_OVER_PI * (x + _GELU_CUBIC * x**3)
    return 0.5 * x * (1.0 + jnp.tanh(inner))
  # erfc(-x / sqrt 2) keeps relative precision in the left tail, where
  # 1 + erf(x / sqrt 2) would cancel to 0.
  return 0.5 * x * erfc(-x / _SQRT_2)


def _gelu_derivative(x: Array, approximate: bool = False) -> Array:
  if approximate:
    inner = _SQRT_2_OVER_PI * (x + _GELU_CUBIC * x**3)
    d_inner = _SQRT_2_OVER_PI * (1.0 + 3.0 * _GELU_CUBIC * x**2)
    # sech^2 decays like exp(-2|inner|) while x * d_inner grows like x^3:
    # the product is 0 in the tails, never inf * 0.
    tail = 0.5 * x * d_inner * _sech2(inner)
    return 0.5 * (1.0 + jnp.tanh(inner)) + jnp.where(jnp.isfinite(tail), tail, 0.0)
  return 0.5 * erfc(-x / _SQRT_2) + x * _INV_SQRT_2PI * jnp.exp(-0.5 * x * x)


register(
    Entry(
        "gelu",
        half_as_f32(gelu),
        half_as_f32(_gelu_derivative),
        params={"approximate": Param(False, kind=bool)},
        summary="x * Phi(x)",
    )
)

# --- silu / swish -------------------------------------------------------------


def silu(x: Array) -> Array:
  """x * sigmoid(x) (Elfwing et al., 2017; Ramachandran et al., 2017: swish)."""
  return x * jax.nn.sigmoid(x)


register(
    Entry(
        "silu",
        silu,
        lambda x: jax.nn.sigmoid(x) * (1.0 + x * jax.nn.sigmoid(-x)),
        aliases=("swish",),
        summary="x * sigmoid(x)",
    )
)

# --- softplus -----------------------------------------------------------------


def softplus(x: Array) -> Array:
  """log(1 + exp(x)) (Dugas et al., 2001), computed as logaddexp(x, 0)."""
  return jnp.logaddexp(x, 0.0)


register(
    Entry(
        "softplus",
        softplus,
        jax.nn.sigmoid,
        summary="log(1 + exp(x))",
    )
)
