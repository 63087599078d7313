"""Building blocks that keep activations accurate in the tails and at +-inf.

The formulas in this package follow a few rules:

- Logistic terms come from e = exp(-|x|) and r = 1 / (1 + e): sigmoid(x) is
  r or e * r, and sigmoid(x) * sigmoid(-x) = e * r**2 keeps its relative
  precision where s * (1 - s) rounds to zero.
- float32 inputs (`fast`) take jax.nn's formula where the accurate one costs
  speed: XLA does not duplicate an exp or a division into two fused loops, so
  a derivative sharing them with the value writes and rereads whole arrays.
- A product x * g(x) whose factor g vanishes at -inf or +inf would give
  inf * 0 = NaN there; clamping x to the finite range first gives the limit.
- Piecewise derivatives built from comparisons lose NaN (every comparison
  with NaN is false); `keep_nan` puts it back.
- Gaussian tails exp(-c x**2) split x into an integer and a fraction, so the
  exponent is never rounded (a rounded x**2 costs x**2 * eps of relative
  precision).
"""

from __future__ import annotations

import contextlib
import threading

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array


def sqrt(v: float | Array) -> float | Array:
  """sqrt of a parameter: math.sqrt of a Python number (the thresholds the
  catalogue is tested with), jnp.sqrt of an array or tracer (a parameter
  differentiated or mapped)."""
  if isinstance(v, (int, float)):
    return float(np.sqrt(v))
  return jnp.sqrt(v)


def is_f64(x: Array) -> bool:
  """Whether `x` is float64 (trace-time: selects the formula, costs nothing)."""
  return x.dtype == jnp.float64


_STATE = threading.local()


@contextlib.contextmanager
def precise():
  """Within it, float32 formulas take their accurate forms.

  float16 and bfloat16 inputs are computed in float32 inside this context:
  they are never benchmarked against jax.nn, so they get the accurate tails.
  """
  before = getattr(_STATE, "precise", False)
  _STATE.precise = True
  try:
    yield
  finally:
    _STATE.precise = before


def fast(x: Array) -> bool:
  """Whether to take the float32 fast form: jax.nn's own formula, whose
  derivative XLA computes from the output in one fused pass. It keeps every
  bit in the middle of the range and rounds to 0 earlier in some tails.
  """
  return x.dtype == jnp.float32 and not getattr(_STATE, "precise", False)


def const(x: Array, value: float) -> Array:
  """`value` as a scalar of x's dtype, so constants never promote x."""
  return jnp.asarray(value, x.dtype)


def finite(x: Array) -> Array:
  """x with +-inf clamped to the largest finite values; NaN stays NaN."""
  fi = jnp.finfo(x.dtype)
  return jnp.clip(x, const(x, fi.min), const(x, fi.max))


def finite_below(x: Array) -> Array:
  """x with -inf clamped to the most negative finite value."""
  return jnp.maximum(x, const(x, jnp.finfo(x.dtype).min))


def keep_nan(x: Array, d: Array) -> Array:
  """d, except NaN wherever x is NaN."""
  return jnp.where(jnp.isnan(x), x, d)


def ones(x: Array) -> Array:
  return jnp.ones_like(x)


def step(x: Array, cond: Array, a: float, b: float) -> Array:
  """where(cond, a, b) in x's dtype, NaN where x is NaN."""
  return keep_nan(x, jnp.where(cond, const(x, a), const(x, b)))


def neg_abs(x: Array) -> Array:
  """-|x| with the right-hand derivative -1 at 0 (autodiff of abs gives 0
  there), so formulas built on it differentiate correctly at x = 0."""
  return jnp.where(x >= 0, -x, x)


def logistic_parts(x: Array) -> tuple[Array, Array]:
  """(e, r) = (exp(-|x|), 1 / (1 + e)); NaN in, NaN out."""
  e = jnp.exp(neg_abs(x))
  return e, 1.0 / (1.0 + e)


def sigmoid_from(x: Array, e: Array, r: Array) -> Array:
  """sigmoid(x) from `logistic_parts`."""
  return jnp.where(x >= 0, const(x, 1.0), e) * r


def exp_neg_square(x: Array, c: float) -> Array:
  """exp(-c x**2) for c in {1, 1/2}, with the exponent never rounded.

  x = n + f with n = trunc(x): c n**2 and 2 c n f are exact (their bits fit
  the significand), c f**2 <= 1 is rounded harmlessly, and since |n| <= |x|
  no factor underflows before the product does.
  """
  if c not in (1.0, 0.5):
    raise ValueError(f"c must be 1 or 1/2, got {c}.")
  # Beyond 64 the result is 0 in every float type; the clamp keeps n f finite.
  x = jnp.clip(x, const(x, -64.0), const(x, 64.0))
  n = jnp.trunc(x)
  f = x - n
  # The barrier stops XLA from rewriting exp(a) * exp(b) as exp(a + b), which
  # would round the exponent again.
  e1, e2, e3 = jax.lax.optimization_barrier(
      (jnp.exp(-c * (n * n)), jnp.exp(-(2.0 * c) * (n * f)), jnp.exp(-c * (f * f)))
  )
  return e1 * e2 * e3


def sech2(x: Array) -> Array:
  """1 - tanh(x)**2 without cancellation: 4 e / (1 + e)**2, e = exp(-2|x|)."""
  e = jnp.exp(-2.0 * jnp.abs(x))
  return 4.0 * e / jnp.square(1.0 + e)


def poly(x: Array, coefficients: np.ndarray | list[float]) -> Array:
  """Horner evaluation, highest degree first."""
  acc = jnp.zeros_like(x)
  for c in coefficients:
    acc = acc * x + c
  return acc
