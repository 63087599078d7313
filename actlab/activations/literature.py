"""Activations from the literature: self-gated, bounded and periodic forms.

Each docstring cites the paper that introduced the activation.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.scipy.special import erf

from actlab.activations import numerics as nx
from actlab.activations.metadata import Facts, inf
from actlab.activations.params import Param, positive, unit_interval
from actlab.activations.registry import Entry, register

Array = jax.Array

_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


def _tanh_exp(x: Array) -> tuple[Array, Array]:
  # Beyond x = 30 tanh(e^x) = 1 and sech^2(e^x) = 0 in every float type;
  # the clamp keeps x e^x finite where it meets that 0 (and autodiff of the
  # formula from computing 0 * inf there).
  xs = jnp.clip(nx.finite(x), None, 30.0)
  u = jnp.exp(xs)
  t = jnp.tanh(u)
  return nx.finite_below(x) * t, t + xs * u * nx.sech2(u)


def tanh_exp(x: Array) -> Array:
  """x * tanh(exp(x)) (Liu & Di, 2020, 'TanhExp: a smooth activation function
  with high convergence speed for lightweight neural networks')."""
  return _tanh_exp(x)[0]


register(Entry(
    "tanh_exp", tanh_exp, value_and_derivative=_tanh_exp,
    summary="x * tanh(exp(x))",
    facts=Facts((-0.35328577784821127099, inf), False, "Cinf", True,
                1.0619753087179159692, 0.69656396039517238403, "left"),
))


def _serf(x: Array) -> tuple[Array, Array]:
  e, r = nx.logistic_parts(x)
  sp = jnp.where(x >= 0, x, 0.0) + jnp.log1p(e)
  g = erf(sp)
  dg = _TWO_OVER_SQRT_PI * jnp.exp(-(sp * sp)) * nx.sigmoid_from(x, e, r)
  return nx.finite_below(x) * g, g + nx.finite(x) * dg


def serf(x: Array) -> Array:
  """x * erf(softplus(x)) (Nag, Bhattacharyya & Mukherjee, 2023, 'SERF:
  towards better training of deep neural networks using log-Softplus ERror
  activation Function', WACV)."""
  return _serf(x)[0]


register(Entry(
    "serf", serf, value_and_derivative=_serf, summary="x * erf(softplus(x))",
    facts=Facts((-0.34843745875960642022, inf), False, "Cinf", True,
                1.0861254441509971534, 1.0960460404526292402, "left"),
))


def _smish(x: Array) -> tuple[Array, Array]:
  # tanh(log(1 + s)) = s (s + 2) / (s^2 + 2 s + 2) with s = sigmoid(x).
  e, r = nx.logistic_parts(x)
  s = nx.sigmoid_from(x, e, r)
  q = 1.0 / (s * (s + 2.0) + 2.0)
  gate = s * (s + 2.0) * q
  dgate = 4.0 * (1.0 + s) * (q * q) * (e * r * r)
  return nx.finite_below(x) * gate, gate + nx.finite(x) * dgate


def smish(x: Array) -> Array:
  """x * tanh(log(1 + sigmoid(x))) (Wang, Ren & Wang, 2022, 'Smish: a novel
  activation function for deep learning methods', Electronics 11(4))."""
  return _smish(x)[0]


register(Entry(
    "smish", smish, value_and_derivative=_smish,
    summary="x * tanh(log(1 + sigmoid(x)))",
    facts=Facts((-0.24999366366012949539, inf), False, "Cinf", True,
                0.63688422288122629865, 2.2154214540088012988, "left"),
))


def _logish(x: Array) -> tuple[Array, Array]:
  e, r = nx.logistic_parts(x)
  s = nx.sigmoid_from(x, e, r)
  gate = jnp.log1p(s)
  return nx.finite_below(x) * gate, gate + nx.finite(x) * (e * r * r) / (1.0 + s)


def logish(x: Array) -> Array:
  """x * log(1 + sigmoid(x)) (Zhu et al., 2021, 'Logish: a new nonlinear
  nonmonotonic activation function for convolutional neural network',
  Neurocomputing 458)."""
  return _logish(x)[0]


register(Entry(
    "logish", logish, value_and_derivative=_logish,
    summary="x * log(1 + sigmoid(x))",
    facts=Facts((-0.25276881678944035309, inf), False, "Cinf", True,
                0.74631118041273968135, 2.3167585149953630805, "left"),
))


def _elish(x: Array) -> tuple[Array, Array]:
  e, r = nx.logistic_parts(x)
  pos = x >= 0
  em1 = jnp.expm1(jnp.where(x < 0, x, 0.0))  # exp(x) - 1 on the negative side
  # x >= 0: x s, f' = r (1 + x e r); x < 0 (there e = exp(x)):
  # (e - 1) s, f' = e r (e + (e - 1) r).
  y = jnp.where(pos, x * r, em1 * e * r)
  d = jnp.where(pos, r * (1.0 + nx.finite(x) * e * r), e * r * (e + em1 * r))
  return y, d


def elish(x: Array) -> Array:
  """x * sigmoid(x) for x >= 0, (exp(x) - 1) * sigmoid(x) below (Basirat &
  Roth, 2018, 'The quest for the golden activation function'). C1 at 0."""
  return _elish(x)[0]


register(Entry(
    "elish", elish, value_and_derivative=_elish,
    summary="x sigmoid(x) | (exp(x) - 1) sigmoid(x)",
    facts=Facts((-0.1715728752538099024, inf), False, "C1", True,
                1.099839320128866917, 2.3993572805154676678, "left"),
))


def _lisht(x: Array) -> tuple[Array, Array]:
  t = jnp.tanh(x)
  return x * t, t + nx.finite(x) * nx.sech2(x)


def lisht(x: Array) -> Array:
  """x * tanh(x) (Roy et al., 2019, 'LiSHT: non-parametric linearly scaled
  hyperbolic tangent activation function for neural networks')."""
  return _lisht(x)[0]


register(Entry(
    "lisht", lisht, value_and_derivative=_lisht, summary="x * tanh(x)",
    facts=Facts((0.0, inf), False, "Cinf", False,
                1.1996786402577338339, 1.1996786402577338339, "none"),
))


def _penalized_tanh(x: Array, a: float = 0.25) -> tuple[Array, Array]:
  t = jnp.tanh(x)
  return jnp.where(x > 0, t, a * t), jnp.where(x > 0, 1.0, a) * nx.sech2(x)


def penalized_tanh(x: Array, a: float = 0.25) -> Array:
  """tanh(x) for x > 0, a * tanh(x) below (Xu, Huang & Li, 2016, 'Revise
  saturated activation functions'; Eger, Youssef & Gurevych, 2018, 'Is it
  time to swish?'). f'(0) = a."""
  return _penalized_tanh(x, a)[0]


register(Entry(
    "penalized_tanh", penalized_tanh, value_and_derivative=_penalized_tanh,
    params={"a": Param(0.25, check=unit_interval)},
    kinks=lambda a: {0.0: a} if a != 1 else {},
    summary="tanh(x) if x > 0 else a * tanh(x)",
    facts=lambda a: Facts((-a, 1.0), True, "Cinf" if a == 1 else "C0", a > 0,
                          1.0, 0.0, "both"),
))


def _bent_identity(x: Array) -> tuple[Array, Array]:
  xf = nx.finite(x)
  s = jnp.hypot(xf, 1.0)
  a = jnp.abs(xf)
  # (s - 1) / 2 = x^2 / (2 (s + 1)): no cancellation near 0, no overflow.
  return x + 0.5 * a * (a / (s + 1.0)), 1.0 + 0.5 * (xf / s)


def bent_identity(x: Array) -> Array:
  """(sqrt(x^2 + 1) - 1) / 2 + x. It appears in activation-function surveys
  (e.g. Dubey, Singh & Chaudhuri, 2022, 'Activation functions in deep
  learning: a comprehensive survey and benchmark'); no original paper is
  known."""
  return _bent_identity(x)[0]


register(Entry(
    "bent_identity", bent_identity, value_and_derivative=_bent_identity,
    summary="(sqrt(x^2 + 1) - 1) / 2 + x",
    facts=Facts((-inf, inf), True, "Cinf", True, 1.5, inf, "none"),
))


def _isru(x: Array, alpha: float = 1.0) -> tuple[Array, Array]:
  # Beyond 1 / (eps sqrt(alpha)) the value is +-1/sqrt(alpha) to the last
  # bit; clamping there keeps x * r finite at +-inf.
  big = 1.0 / (float(jnp.finfo(x.dtype).eps) * nx.sqrt(alpha))
  xc = jnp.clip(x, -big, big)
  r = 1.0 / jnp.sqrt(1.0 + alpha * (xc * xc))
  # f' = r^3 from the unclamped x, so f'(+-inf) = 0 exactly.
  rd = 1.0 / jnp.sqrt(1.0 + alpha * (x * x))
  return xc * r, rd * rd * rd


def isru(x: Array, alpha: float = 1.0) -> Array:
  """x / sqrt(1 + alpha x^2), the inverse square root unit (Carlile et al.,
  2017, 'Improving deep learning by inverse square root linear units
  (ISRLUs)')."""
  return _isru(x, alpha)[0]


_ALPHA = {"alpha": Param(1.0, check=positive, requirement="> 0")}

register(Entry(
    "isru", isru, value_and_derivative=_isru, params=_ALPHA,
    summary="x / sqrt(1 + alpha x^2)",
    facts=lambda alpha: Facts((-1 / math.sqrt(alpha), 1 / math.sqrt(alpha)), True,
                              "Cinf", True, 1.0, 0.0, "both"),
))


def _isrlu(x: Array, alpha: float = 1.0) -> tuple[Array, Array]:
  y, d = _isru(x, alpha)
  return jnp.where(x >= 0, x, y), jnp.where(x >= 0, 1.0, d)


def isrlu(x: Array, alpha: float = 1.0) -> Array:
  """x for x >= 0, x / sqrt(1 + alpha x^2) below (Carlile et al., 2017). C2
  at 0: no kink."""
  return _isrlu(x, alpha)[0]


register(Entry(
    "isrlu", isrlu, value_and_derivative=_isrlu, params=_ALPHA,
    summary="x if x >= 0 else x / sqrt(1 + alpha x^2)",
    facts=lambda alpha: Facts((-1 / math.sqrt(alpha), inf), True, "C2", True,
                              1.0, 0.0, "left"),
))


def gcu(x: Array) -> Array:
  """x * cos(x), the growing cosine unit (Noel et al., 2021, 'Growing cosine
  unit: a novel oscillatory activation function that can speedup training and
  reduce parameters in convolutional neural networks'). No limit at +-inf."""
  return x * jnp.cos(x)


register(Entry(
    "gcu", gcu, lambda x: jnp.cos(x) - x * jnp.sin(x), summary="x * cos(x)",
    facts=Facts((-inf, inf), False, "Cinf", True, inf, inf, "none"),
))


def _snake(x: Array, a: float = 1.0) -> tuple[Array, Array]:
  ax = a * x
  s = jnp.sin(ax)
  # x + a bounded term: +-inf in, +-inf out (sin(inf) would make it NaN).
  y = jnp.where(jnp.isinf(x), x, x + (s * s) / a)
  return y, 1.0 + jnp.sin(2.0 * ax)


def snake(x: Array, a: float = 1.0) -> Array:
  """x + sin^2(a x) / a (Liu Ziyin, Hartwig & Ueda, 2020, 'Neural networks
  fail to learn periodic functions and how to fix it', NeurIPS)."""
  return _snake(x, a)[0]


register(Entry(
    "snake", snake, value_and_derivative=_snake,
    params={"a": Param(1.0, check=positive, requirement="> 0")},
    summary="x + sin(a x)^2 / a",
    facts=lambda a: Facts((-inf, inf), True, "Cinf", True, 2.0, math.pi / (4 * a),
                          "none"),
))


def sine(x: Array, w0: float = 1.0) -> Array:
  """sin(w0 x) (Sitzmann et al., 2020, 'Implicit neural representations with
  periodic activation functions', NeurIPS: SIREN uses w0 = 30)."""
  return jnp.sin(w0 * x)


register(Entry(
    "sine", sine, lambda x, w0: w0 * jnp.cos(w0 * x),
    params={"w0": Param(1.0, check=positive, requirement="> 0")},
    aliases=("siren",), summary="sin(w0 x)",
    facts=lambda w0: Facts((-1.0, 1.0), False, "Cinf", True, w0, 0.0, "none"),
))


def _gaussian(x: Array) -> tuple[Array, Array]:
  y = nx.exp_neg_square(x, 1.0)
  # y = 0 beyond |x| = 64; the clamp keeps -2x finite where it meets that 0.
  return y, -2.0 * jnp.clip(x, -64.0, 64.0) * y


def gaussian(x: Array) -> Array:
  """exp(-x^2), the Gaussian radial basis (Broomhead & Lowe, 1988,
  'Multivariable functional interpolation and adaptive networks'; as a
  coordinate-MLP activation: Ramasinghe & Lucey, 2022, 'Beyond periodicity',
  ECCV), with the exponent never rounded."""
  return _gaussian(x)[0]


register(Entry(
    "gaussian", gaussian, value_and_derivative=_gaussian, summary="exp(-x^2)",
    facts=Facts((0.0, 1.0), False, "Cinf", False, 0.85776388496070679648,
                0.7071067811865475244, "both"),
))
