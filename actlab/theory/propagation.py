"""Signal propagation through deep random networks at initialisation.

For a fully connected network with weights W_ij ~ N(0, sw2 / fan_in) and
biases b_i ~ N(0, sb2), in the limit of wide layers (Poole et al. 2016,
"Exponential expressivity in deep neural networks through transient chaos";
Schoenholz et al. 2017, "Deep information propagation"), with phi the
activation and z ~ N(0, 1):

- the length map q -> V(q) = sw2 E[phi(sqrt(q) z)^2] + sb2 carries a
  pre-activation's variance from layer to layer; q* = V(q*) is reached from
  the input's q0 (1 for standardised inputs, by default);
- chi_1 = sw2 E[phi'(sqrt(q*) z)^2] is the factor by which the mean squared
  gradient ||dL/dz||^2 grows per layer, backwards, and the slope of the
  correlation map c -> C(c) = (sw2 E[phi(u1) phi(u2)] + sb2) / q* at c = 1
  (u1, u2 ~ N(0, q*) with correlation c);
- chi_1 < 1: ordered (c* = 1 attracts: inputs become alike, gradients
  vanish); chi_1 > 1: chaotic (c* < 1: nearby inputs decorrelate, gradients
  explode); chi_1 = 1: critical;
- depth scales xi_q = -1 / ln |V'(q*)| and xi_c = -1 / ln chi_c, chi_c the
  slope of C at c* (chi_c = chi_1 in the ordered phase); xi_c diverges at
  criticality, and Schoenholz et al. find networks trainable to depths of
  about 6 xi_c.

V'(q) = sw2 E[phi(sqrt(q) z)^2 (z^2 - 1)] / (2 q) needs no derivative of
phi, so jumps (threshold, hard_shrink) are differentiated correctly.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import jax
import numpy as np
from scipy import optimize

from actlab.theory import gaussian
from actlab.theory.functions import Elementwise, elementwise

# Beyond these the length map is said to diverge or to collapse to 0.
Q_MAX = 1e12
Q_MIN = 1e-30
# Where q* -> 0 or q* -> inf, chi_1 is its limit, evaluated here.
Q_SMALL = 1e-40
Q_LARGE = 1e8
# Expectations this far off (relative to E[|g|]) are refused.
ACCURACY = 1e-8
# |chi_1 - 1| within this is 'critical'.
CRITICAL_TOL = 1e-7
_STEP = 10.0  # how far each bracketing step moves q
# |V(q) - q| below this times q carries no sign: rounding, not the map.
_FLAT = 1e-12


class NoCriticalPoint(ValueError):
  """No weight variance in the searched range makes chi_1 = 1."""


@dataclasses.dataclass(frozen=True)
class SignalPropagation:
  """What `signal_propagation` returns; None where a quantity is undefined.

  Attributes:
    activation: the activation's name (canonical spec for registry entries).
    weight_var, bias_var: sw2 and sb2.
    fixed_point: 'finite' (q* found), 'zero' (q -> 0: the signal dies),
      'infinite' (q grows past Q_MAX) or 'every' (V(q) = q at q0 to rounding:
      e.g. relu at sw2 = 2, sb2 = 0, where every q is a fixed point).
    q_star: the fixed point (0.0 or math.inf for 'zero' and 'infinite').
    chi_1: sw2 E[phi'(sqrt(q*) z)^2] (its limit at q* = 0 or inf).
    length_slope: V'(q*), the length map's slope at q*.
    c_star: the stable fixed point of the correlation map.
    chi_c: the correlation map's slope at c_star.
    xi_q, xi_c: the depth scales (math.inf where they diverge).
    phase: 'ordered', 'critical' or 'chaotic' (by chi_1).
    quadrature_error: the largest estimated relative error of the
      expectations used (n vs 2n nodes per panel).
    message: what happened, in words.
  """

  activation: str
  weight_var: float
  bias_var: float
  fixed_point: str
  q_star: float
  chi_1: float | None
  length_slope: float | None
  c_star: float | None
  chi_c: float | None
  xi_q: float | None
  xi_c: float | None
  phase: str | None
  quadrature_error: float
  message: str


def _check_variances(weight_var: float, bias_var: float) -> None:
  for name, v in (("weight_var", weight_var), ("bias_var", bias_var)):
    if not isinstance(v, (int, float, np.floating)) or not math.isfinite(v) or v < 0:
      raise ValueError(
          f"{name} is a variance: a finite number >= 0, got {v!r}. For He"
          " initialisation of a relu network weight_var=2.0, bias_var=0.0."
      )
  if weight_var == 0:
    raise ValueError(
        "weight_var=0 makes every layer ignore its input; signal propagation needs"
        " weight_var > 0."
    )


class _Map:
  """The length and correlation maps of one activation, with error tracking."""

  def __init__(self, act: Elementwise, weight_var: float, bias_var: float):
    self.act, self.sw2, self.sb2 = act, float(weight_var), float(bias_var)
    self.error = 0.0

  def _breaks(self, q: float) -> list[float]:
    return [k / math.sqrt(q) for k in self.act.kinks]

  def _expect(self, g, q: float, count: int) -> np.ndarray:
    value, err = gaussian.expect(g, self._breaks(q), count=count)
    self._note(err, value)
    return value

  def _note(self, err: np.ndarray, value: np.ndarray) -> None:
    if np.all(np.isfinite(value)):
      self.error = max(self.error, float(np.max(err)))
      if self.error > ACCURACY:
        raise gaussian.QuadratureError(
            f"Gaussian expectations of {self.act.name} reached only"
            f" {self.error:.1e} relative accuracy (n vs 2n nodes; wanted"
            f" <= {ACCURACY:g}). A function with kinks or jumps should declare them:"
            " register it as an Entry with kinks={x: f'(x)}."
        )

  def length(self, q: float) -> float:
    """V(q)."""
    r = math.sqrt(q)
    e = self._expect(lambda z: self.act.f(r * z) ** 2, q, 1)[0]
    return self.sw2 * e + self.sb2

  def slopes(self, q: float) -> tuple[float, float]:
    """(chi_1, V'(q)) at q."""
    r = math.sqrt(q)

    def g(z):
      fz = self.act.f(r * z)
      return np.stack([self.act.df(r * z) ** 2, fz * fz * (z * z - 1.0)])

    e = self._expect(g, q, 2)
    return self.sw2 * e[0], self.sw2 * e[1] / (2.0 * q)

  def correlation(self, q: float, c: float) -> tuple[float, float]:
    """(C(c), chi_c(c)) at the fixed point q."""
    r = math.sqrt(q)

    def g(x1, x2):
      # x1 holds the outer nodes only: f(u1) costs one column.
      u1, u2 = r * x1, r * x2
      return np.stack(
          [self.act.f(u1) * self.act.f(u2), self.act.df(u1) * self.act.df(u2)]
      )

    value, err = gaussian.expect2(g, self._breaks(q), c, count=2)
    self._note(err, value)
    return (self.sw2 * value[0] + self.sb2) / q, self.sw2 * value[1]


def _fixed_point(m: _Map, q0: float) -> tuple[str, float]:
  """Where iterating the length map from q0 goes: a bracket and brentq."""
  f = lambda q: m.length(q) - q  # noqa: E731
  f0 = f(q0)
  if not math.isfinite(f0):
    return "infinite", math.inf
  if abs(f0) <= _FLAT * q0:
    if abs(f(q0 * 4.0)) <= 4 * _FLAT * q0:
      return "every", q0
    return "finite", q0
  up = f0 > 0
  lo = q0
  while True:
    hi = lo * _STEP if up else lo / _STEP
    if up and hi > Q_MAX:
      return "infinite", math.inf
    if not up and hi < Q_MIN:
      return "zero", 0.0
    f_hi = f(hi)
    if not math.isfinite(f_hi):
      return "infinite", math.inf
    if abs(f_hi) > _FLAT * hi and (f_hi > 0) != up:
      a, b = sorted((lo, hi))
      return "finite", optimize.brentq(f, a, b, xtol=1e-300, rtol=1e-13, maxiter=200)
    lo = hi


def _depth_scale(slope: float | None) -> float | None:
  if slope is None or not math.isfinite(slope):
    return None
  a = abs(slope)
  if a >= 1.0 - CRITICAL_TOL:  # critical (as `phase` says) or growing
    return math.inf if a <= 1.0 + CRITICAL_TOL else None
  return -1.0 / math.log(a) if a > 0 else 0.0


def _chaotic_c_star(m: _Map, q: float) -> tuple[float, float]:
  """The stable fixed point c* < 1 of the correlation map when chi_1 > 1.

  C(0) >= 0 and C(c) < c just below 1 (the slope there is chi_1 > 1), so a
  root lies in [0, 1). Newton steps use chi_c = C'(c), which the same
  quadrature gives, and fall back to bisection when they leave the bracket.
  """
  c0, slope0 = m.correlation(q, 0.0)
  if c0 <= 1e-14:
    return 0.0, slope0
  hi = None
  for delta in (1e-2, 1e-4, 1e-6, 1e-8):
    if m.correlation(q, 1.0 - delta)[0] < 1.0 - delta:
      hi = 1.0 - delta
      break
  if hi is None:
    return 1.0, m.correlation(q, 1.0)[1]
  lo, c = 0.0, 0.5 * hi
  for _ in range(100):
    value, slope = m.correlation(q, c)
    g = value - c
    if g > 0:
      lo = c
    else:
      hi = c
    step = c - g / (slope - 1.0) if slope != 1.0 else math.nan
    if abs(g) <= 1e-14 or hi - lo <= 1e-14:
      return c, slope
    c = step if lo < step < hi else 0.5 * (lo + hi)
  return c, m.correlation(q, c)[1]


def signal_propagation(
    activation: Any, weight_var: float, bias_var: float = 0.0, *, q0: float = 1.0,
    correlations: bool = True,
) -> SignalPropagation:
  """Fixed point, gradient growth, phase and depth scales of a deep random
  network with `activation` (a spec string, Entry or function of one array),
  weight variance sw2 = `weight_var` (times 1 / fan_in) and bias variance
  sb2 = `bias_var`, from inputs of second moment `q0` per unit.

  `correlations=False` skips the correlation map (c_star, chi_c and, in the
  chaotic phase, xi_c are None): it costs a two-dimensional quadrature.
  """
  _check_variances(weight_var, bias_var)
  act = elementwise(activation)
  m = _Map(act, weight_var, bias_var)
  kind, q = _fixed_point(m, float(q0))
  notes = []
  if kind == "zero":
    q_eval = Q_SMALL
    notes.append(f"q -> 0: the signal dies with depth; chi_1 is its limit (q = {Q_SMALL:g}).")
  elif kind == "infinite":
    q_eval = Q_LARGE
    notes.append(
        f"q grows without bound (past {Q_MAX:g}): no finite fixed point; chi_1 is"
        f" evaluated at q = {Q_LARGE:g}."
    )
  else:
    q_eval = q
    if kind == "every":
      notes.append("V(q) = q for every q: each input keeps its length.")
  chi_1, slope = (float(v) for v in m.slopes(q_eval))
  if not math.isfinite(chi_1):
    chi_1, slope = None, None
    notes.append("E[phi'^2] is not finite there.")
  elif kind == "infinite":
    slope = None
  phase = None
  if chi_1 is not None:
    phase = ("critical" if abs(chi_1 - 1.0) <= CRITICAL_TOL
             else "ordered" if chi_1 < 1.0 else "chaotic")
  c_star = chi_c = None
  if phase in ("ordered", "critical"):
    c_star, chi_c = 1.0, chi_1
  elif phase == "chaotic" and correlations and kind in ("finite", "every"):
    c_star, chi_c = (float(v) for v in _chaotic_c_star(m, q))
  if slope is not None and kind == "finite" and abs(slope) > 1.0 + CRITICAL_TOL:
    notes.append(f"q* is unstable (V'(q*) = {slope:.4g}).")
  return SignalPropagation(
      activation=act.name, weight_var=float(weight_var), bias_var=float(bias_var),
      fixed_point=kind, q_star=q, chi_1=chi_1, length_slope=slope, c_star=c_star,
      chi_c=chi_c, xi_q=_depth_scale(slope), xi_c=_depth_scale(chi_c), phase=phase,
      quadrature_error=m.error, message=" ".join(notes) or "finite fixed point q*.",
  )


def gradient_growth(activation: Any, weight_var: float, bias_var: float = 0.0,
                    *, q0: float = 1.0) -> float | None:
  """chi_1 alone (no correlation map): what `critical_weight_var` solves."""
  return signal_propagation(
      activation, weight_var, bias_var, q0=q0, correlations=False
  ).chi_1


def critical_weight_var(
    activation: Any, bias_var: float = 0.0, *, search: tuple[float, float] = (1e-2, 1e2),
    q0: float = 1.0,
) -> float:
  """The weight variance sw2 at which chi_1 = 1 (the order-to-chaos edge).

  Scans `search` on a log grid for a sign change of chi_1 - 1 and refines it
  with brentq; the smallest such sw2 is returned. Raises `NoCriticalPoint`
  (a ValueError) with chi_1 at the ends of the range when there is none.
  """
  _check_variances(1.0, bias_var)
  if isinstance(activation, str):  # specs are values: the answer can be kept
    return _critical_for_spec(activation, float(bias_var), tuple(search), float(q0))
  return _critical(activation, bias_var, search, q0)


@functools.lru_cache(maxsize=256)
def _critical_for_spec(spec: str, bias_var: float, search: tuple[float, float],
                       q0: float) -> float:
  return _critical(spec, bias_var, search, q0)


def _critical(activation: Any, bias_var: float, search: tuple[float, float],
              q0: float) -> float:
  lo, hi = search
  if not 0 < lo < hi:
    raise ValueError(f"search is a range 0 < low < high of weight variances, got {search}.")
  act = elementwise(activation)

  def excess(sw2: float) -> float:
    chi = gradient_growth(act, sw2, bias_var, q0=q0)
    return math.inf if chi is None else math.log(chi)

  grid = np.geomspace(lo, hi, 13)
  values = [excess(s) for s in grid]
  for a, b, fa, fb in zip(grid[:-1], grid[1:], values[:-1], values[1:]):
    if fa == 0:
      return float(a)
    if math.isfinite(fa) and (fa < 0) != (fb < 0):
      if not math.isfinite(fb):
        b = _last_finite(excess, a, b)
      root = float(optimize.brentq(excess, a, b, xtol=1e-14, rtol=1e-12, maxiter=200))
      return _continuous(act.name, bias_var, root, excess)
  ends = ", ".join(
      f"chi_1({s:g}) = {math.exp(v):.4g}" if math.isfinite(v) else f"chi_1({s:g}) undefined"
      for s, v in ((lo, values[0]), (hi, values[-1]))
  )
  raise NoCriticalPoint(
      f"No weight variance in [{lo:g}, {hi:g}] makes chi_1 = 1 for {act.name} at"
      f" bias_var={bias_var:g} ({ends}). Widen search= or choose another bias_var."
  )


def _continuous(name: str, bias_var: float, root: float, excess) -> float:
  """`root` if chi_1 = 1 there; else chi_1 jumps across 1 (the fixed point
  reached from q0 jumps, e.g. from 0 to a finite q*), and that is said."""
  at = excess(root)
  if abs(at) <= 10 * CRITICAL_TOL:
    return root
  below, above = excess(root * (1 - 1e-9)), excess(root * (1 + 1e-9))
  show = lambda v: f"{math.exp(v):.4g}" if math.isfinite(v) else "undefined"  # noqa: E731
  raise NoCriticalPoint(
      f"chi_1 of {name} at bias_var={bias_var:g} jumps across 1 at weight_var ~"
      f" {root:.6g} (from {show(below)} to {show(above)}): the length map's fixed point"
      " reached from q0 jumps there, so no weight variance gives chi_1 = 1. The"
      " order-to-chaos transition is discontinuous; choose a weight variance on the"
      " ordered side of it, or another bias_var or q0."
  )


def _last_finite(f, a: float, b: float) -> float:
  """A point in (a, b] where f is finite and has f(b)'s sign, by bisection."""
  for _ in range(60):
    mid = math.sqrt(a * b)
    if math.isfinite(f(mid)) and f(mid) > 0:
      return mid
    a = mid
  return b


def critical_init(activation: Any, bias_var: float = 0.0, *,
                  distribution: str = "truncated_normal", **kwargs: Any):
  """A flax kernel initializer at the critical weight variance: variance
  scaling with scale sw2 over fan_in, as `he_normal` is for relu (sw2 = 2).

  Usable as any flax layer's or actlab model's `kernel_init`. With
  `bias_var > 0` the biases must be drawn from N(0, bias_var) too
  (`jax.nn.initializers.normal(bias_var ** 0.5)`), or the prediction does not
  hold. Extra keyword arguments go to `critical_weight_var`.
  """
  sw2 = critical_weight_var(activation, bias_var, **kwargs)
  return jax.nn.initializers.variance_scaling(sw2, "fan_in", distribution)
