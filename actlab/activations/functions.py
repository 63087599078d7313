"""Smooth classics: sigmoid, tanh, softplus and the x * gate(x) family.

Each formula sits beside its analytic derivative and its facts
(`Facts(range, monotonic, smoothness, zero_centred, max_slope, max_slope_at,
saturates)`). The numerical rules they follow are in `numerics`. Importing
this module registers every family module of the package.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.scipy.special import erfc

from actlab.activations import numerics as nx
from actlab.activations.metadata import Facts, inf
from actlab.activations.params import Param, positive
from actlab.activations.registry import Entry, register

Array = jax.Array

_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_GELU_CUBIC = 0.044715


def identity(x: Array) -> Array:
  """f(x) = x, the 'linear' activation. Stacked linear layers collapse.
  Integers stay integers."""
  return x


register(Entry(
    "identity", identity, lambda x: nx.keep_nan(x, nx.ones(x)),
    aliases=("linear",), summary="x", integer=True,
    facts=Facts((-inf, inf), True, "Cinf", True, 1.0, 0.0, "none"),
))


def _sigmoid(x: Array) -> tuple[Array, Array]:
  if nx.fast(x):
    # y (1 - y) rounds to 0 for x > 17, where the true value is below 4e-8.
    y = jax.nn.sigmoid(x)
    return y, y * (1.0 - y)
  e, r = nx.logistic_parts(x)
  return nx.sigmoid_from(x, e, r), e * r * r


def sigmoid(x: Array) -> Array:
  """Logistic sigmoid 1 / (1 + exp(-x)) (Verhulst 1838; in networks since
  Rumelhart, Hinton & Williams 1986). f' = f(x) f(-x) <= 1/4."""
  return _sigmoid(x)[0]


register(Entry(
    "sigmoid", sigmoid, value_and_derivative=_sigmoid,
    aliases=("logistic",), summary="1 / (1 + exp(-x))",
    facts=Facts((0.0, 1.0), True, "Cinf", False, 0.25, 0.0, "both"),
))


def _tanh(x: Array) -> tuple[Array, Array]:
  y = jnp.tanh(x)
  if nx.fast(x):
    # (1 - y)(1 + y) costs no transcendental beyond tanh itself; it rounds to
    # 0 for |x| > 9, where the true value is below 1e-7.
    return y, (1.0 - y) * (1.0 + y)
  return y, nx.sech2(x)


def tanh(x: Array) -> Array:
  """Hyperbolic tangent (LeCun et al., 1998, 'Efficient BackProp');
  f'(0) = 1 but f' -> 0 as |x| grows (saturation)."""
  return jnp.tanh(x)


register(Entry(
    "tanh", tanh, value_and_derivative=_tanh, summary="tanh(x)",
    facts=Facts((-1.0, 1.0), True, "Cinf", True, 1.0, 0.0, "both"),
))


def _softplus(x: Array) -> tuple[Array, Array]:
  e, r = nx.logistic_parts(x)
  # where, not maximum (which splits the gradient 50/50 at 0), with the same
  # branch at 0 as e = exp(-|x|), so autodiff of the formula is right there.
  return jnp.where(x >= 0, x, 0.0) + jnp.log1p(e), nx.sigmoid_from(x, e, r)


def softplus(x: Array) -> Array:
  """log(1 + exp(x)) (Dugas et al., 2001, 'Incorporating second-order
  functional knowledge for better option pricing')."""
  return _softplus(x)[0]


register(Entry(
    "softplus", softplus, value_and_derivative=_softplus,
    summary="log(1 + exp(x))",
    facts=Facts((0.0, inf), True, "Cinf", False, 1.0, inf, "left"),
))


def _log_sigmoid(x: Array) -> tuple[Array, Array]:
  e, r = nx.logistic_parts(x)
  return jnp.where(x < 0, x, 0.0) - jnp.log1p(e), jnp.where(x >= 0, e, 1.0) * r


def log_sigmoid(x: Array) -> Array:
  """log(sigmoid(x)) = -softplus(-x), the log-likelihood of a logistic unit
  (torch.nn.LogSigmoid); exact to the last bit for large negative x."""
  return _log_sigmoid(x)[0]


register(Entry(
    "log_sigmoid", log_sigmoid, value_and_derivative=_log_sigmoid,
    aliases=("logsigmoid",), summary="-log(1 + exp(-x))",
    facts=Facts((-inf, 0.0), True, "Cinf", False, 1.0, -inf, "right"),
))


def _soft_sign(x: Array) -> tuple[Array, Array]:
  # With +-inf clamped to +-max, 1 + |x| rounds to max and the quotient is 1.
  x = nx.finite(x)
  d = 1.0 + jnp.abs(x)
  r = 1.0 / d
  return x / d, r * r


def soft_sign(x: Array) -> Array:
  """x / (1 + |x|) (Bergstra et al., 2009, 'Quadratic polynomials learn
  better image features'; Glorot & Bengio, 2010)."""
  return _soft_sign(x)[0]


register(Entry(
    "soft_sign", soft_sign, value_and_derivative=_soft_sign,
    aliases=("softsign",), summary="x / (1 + |x|)",
    facts=Facts((-1.0, 1.0), True, "C1", True, 1.0, 0.0, "both"),
))


def _silu(x: Array) -> tuple[Array, Array]:
  if nx.fast(x):
    s = jax.nn.sigmoid(x)
    return nx.finite_below(x) * s, s * (1.0 + nx.finite(x) * (1.0 - s))
  e, r = nx.logistic_parts(x)
  s = nx.sigmoid_from(x, e, r)
  s_neg = jnp.where(x >= 0, e, 1.0) * r
  return nx.finite_below(x) * s, s * (1.0 + nx.finite(x) * s_neg)


def silu(x: Array) -> Array:
  """x * sigmoid(x) (Elfwing et al., 2018, 'Sigmoid-weighted linear units';
  Ramachandran et al., 2017, 'Searching for activation functions': swish)."""
  return _silu(x)[0]


register(Entry(
    "silu", silu, value_and_derivative=_silu,
    aliases=("swish",), summary="x * sigmoid(x)",
    facts=Facts((-0.27846454276107379511, inf), False, "Cinf", True,
                1.099839320128866917, 2.3993572805154676678, "left"),
))


def _gelu(x: Array, approximate: bool = False) -> tuple[Array, Array]:
  if approximate and nx.fast(x):
    # jax.nn's form; 1 + tanh(u) rounds to 0 for x < -5 (true value < 3e-7).
    xs = jnp.clip(x, -1e6, 1e6)
    t = jnp.tanh(_SQRT_2_OVER_PI * (x + _GELU_CUBIC * (x * x * x)))
    cdf = 0.5 * (1.0 + t)
    du = _SQRT_2_OVER_PI * (1.0 + (3.0 * _GELU_CUBIC) * (xs * xs))
    return nx.finite_below(x) * cdf, cdf + (0.5 * xs) * ((1.0 - t) * (1.0 + t)) * du
  if approximate:
    # 0.5 (1 + tanh(u)) = sigmoid(2u): no cancellation in the left tail.
    xs = jnp.clip(x, -1e6, 1e6)  # keeps x * u'(x) finite where it meets 0
    u2 = (2.0 * _SQRT_2_OVER_PI) * (x + _GELU_CUBIC * (x * x * x))
    e, r = nx.logistic_parts(u2)
    s = nx.sigmoid_from(u2, e, r)
    du2 = (2.0 * _SQRT_2_OVER_PI) * (1.0 + (3.0 * _GELU_CUBIC) * (xs * xs))
    return nx.finite_below(x) * s, s + xs * du2 * (e * r * r)
  erfc_ = erfc(-x * _SQRT_HALF)
  if nx.is_f64(x):
    pdf = _INV_SQRT_2PI * nx.exp_neg_square(x, 0.5)
  else:
    pdf = _INV_SQRT_2PI * jnp.exp(-0.5 * (x * x))
  return (0.5 * nx.finite_below(x)) * erfc_, 0.5 * erfc_ + nx.finite(x) * pdf


def gelu(x: Array, approximate: bool = False) -> Array:
  """x * Phi(x), Phi the standard normal CDF (Hendrycks & Gimpel, 2016,
  'Gaussian error linear units').

  `approximate=True` is the tanh form
  0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), computed as x * sigmoid(2u).
  Unlike `jax.nn.gelu`, the default here is the exact form, as in PyTorch and
  Keras.
  """
  return _gelu(x, approximate)[0]


def _gelu_facts(approximate: bool) -> Facts:
  if approximate:
    return Facts((-0.17004075057125405064, inf), False, "Cinf", True,
                 1.1289930686587717655, 1.4185040087908283555, "left")
  return Facts((-0.16997120747990366169, inf), False, "Cinf", True,
               1.1289041451851547863, 1.4142135623730950488, "left")


register(Entry(
    "gelu", gelu, value_and_derivative=_gelu,
    params={"approximate": Param(False, kind=bool)},
    summary="x * Phi(x)", facts=_gelu_facts,
))


def _mish(x: Array) -> tuple[Array, Array]:
  # tanh(softplus(x)) = N / D in terms of e = exp(-|x|): for x >= 0,
  # N = 1 + 2e and D = N + 2e^2; for x < 0, N = e(e + 2) and D = N + 2. The
  # derivative of that gate is 4 (1 + e) e^2 / D^2 (x >= 0) or
  # 4 (1 + e) e / D^2 (x < 0). One exp, one division, no cancellation.
  e = jnp.exp(nx.neg_abs(x))
  pos = x >= 0
  n = jnp.where(pos, 1.0 + 2.0 * e, e * (e + 2.0))
  d = n + jnp.where(pos, 2.0 * (e * e), 2.0)
  # The value divides by D, the derivative by D^2 (gate = n D / D^2): two
  # different divisions, so XLA fuses each into its own loop instead of
  # writing a shared quotient to memory.
  q2 = 1.0 / (d * d)
  gate = n * d * q2
  dgate = 4.0 * (1.0 + e) * jnp.where(pos, e * e, e) * q2
  return nx.finite_below(x) * (n / d), gate + nx.finite(x) * dgate


def mish(x: Array) -> Array:
  """x * tanh(softplus(x)) (Misra, 2019, 'Mish: a self regularized
  non-monotonic activation function'), with tanh(softplus) as a rational
  function of exp(-|x|)."""
  return _mish(x)[0]


register(Entry(
    "mish", mish, value_and_derivative=_mish,
    summary="x * tanh(softplus(x))",
    facts=Facts((-0.30884341301725040663, inf), False, "Cinf", True,
                1.0884981612517278612, 1.4905711794854284593, "left"),
))


def _squareplus(x: Array, b: float = 4.0) -> tuple[Array, Array]:
  # For x < 0, (x + s) / 2 = b / (2 (s - x)) with s = sqrt(x^2 + b) avoids
  # the cancellation that gives 0 for x = -1e4 in float32. Beyond
  # sqrt(b) / eps, s = |x| exactly in floating point, and x^2 could overflow.
  xf = nx.finite(x)
  a = -nx.neg_abs(xf)
  big = nx.sqrt(b) / float(jnp.finfo(x.dtype).eps)
  s = jnp.where(a > big, a, jnp.sqrt(xf * xf + b))
  if nx.fast(x):
    # jax.nn's form, with no division in the forward pass; x + s cancels for
    # x < -1e3, where the value, about b / (4|x|), loses its digits.
    return 0.5 * (xf + s), 0.5 * (1.0 + xf / s)
  t = s + a
  y = jnp.where(x >= 0, 0.5 * t, (0.5 * b) / t)
  # f' = f / s; at +inf the clamped f over s is max / max = 1.
  return y, nx.finite(y) / s


def squareplus(x: Array, b: float = 4.0) -> Array:
  """(x + sqrt(x^2 + b)) / 2 (Barron, 2021, 'Squareplus: a softplus-like
  algebraic rectifier'), computed without cancellation or overflow."""
  return _squareplus(x, b)[0]


register(Entry(
    "squareplus", squareplus, value_and_derivative=_squareplus,
    params={"b": Param(4.0, check=positive, requirement="> 0")},
    summary="(x + sqrt(x^2 + b)) / 2",
    facts=lambda b: Facts((0.0, inf), True, "Cinf", False, 1.0, inf, "left"),
))


def exponential(x: Array) -> Array:
  """exp(x), Keras's 'exponential' activation; unbounded slope."""
  return jnp.exp(x)


register(Entry(
    "exponential", exponential, jnp.exp, summary="exp(x)",
    facts=Facts((0.0, inf), True, "Cinf", False, inf, inf, "left"),
))

# x cosh x - sinh x = sum_{n>=1} 2n x^(2n+1) / (2n+1)!: all terms positive.
_TANH_SHRINK_SERIES = [2 * n / math.factorial(2 * n + 1) for n in range(13, 0, -1)]


def _tanh_shrink(x: Array) -> tuple[Array, Array]:
  t = jnp.tanh(x)
  # x - tanh x cancels for |x| < 2 (it is x^3 / 3 near 0); there it is
  # (x cosh x - sinh x) / cosh x, a series with positive terms.
  xs = jnp.clip(x, -2.0, 2.0)
  small = xs * xs * xs * nx.poly(xs * xs, _TANH_SHRINK_SERIES) / jnp.cosh(xs)
  return jnp.where(jnp.abs(x) < 2.0, small, x - t), t * t


def tanh_shrink(x: Array) -> Array:
  """x - tanh(x) (Keras tanh_shrink, torch.nn.Tanhshrink), accurate near 0
  where the naive difference loses every digit."""
  return _tanh_shrink(x)[0]


register(Entry(
    "tanh_shrink", tanh_shrink, value_and_derivative=_tanh_shrink,
    aliases=("tanhshrink",), summary="x - tanh(x)",
    facts=Facts((-inf, inf), True, "Cinf", True, 1.0, inf, "none"),
))

# The other families register themselves on import.
from actlab.activations import (  # noqa: E402, F401
    gated,
    learnable,
    literature,
    rectifiers,
)
