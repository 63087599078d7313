"""The checks on stated facts (on a dense float64 grid) and on every float type
(finite values, limits at +-inf, NaN propagation, half-precision rounding)."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from actlab.activations.report import (
    DENSE,
    FAR,
    FINITE,
    CheckResult,
    Subject,
    compare,
    float64_available,
    grad,
    no_float64,
    point,
    run,
)

SPECIAL = np.array([-np.inf, np.inf, np.nan])


@functools.lru_cache(maxsize=4)
def _dense(s: Subject) -> tuple[np.ndarray, ...]:
  """f, f' on DENSE and f, jax.grad(f) at -inf, +inf, in float64."""
  d = s.derivative or grad(s.fn)
  with jax.enable_x64(True):
    x = jnp.asarray(DENSE, jnp.float64)
    lim = jnp.array([-np.inf, np.inf])
    values = run(lambda x, lim: (s.fn(x), d(x), s.fn(lim), grad(s.fn)(lim)), x, lim)
    return tuple(np.asarray(a) for a in values)


def _facts_check(name: str) -> Callable[[Callable], Callable[[Subject], CheckResult]]:
  def wrap(body: Callable) -> Callable[[Subject], CheckResult]:
    @functools.wraps(body)
    def run(s: Subject) -> CheckResult:
      if s.facts is None:
        return CheckResult(name, True, "no facts stated (facts=Facts(...))", skipped=True)
      if not float64_available():
        return no_float64(name)
      return body(s, *_dense(s))

    return run

  return wrap


@_facts_check("range")
def _range(s: Subject, y, dy, y_inf, dy_inf) -> CheckResult:
  lo, hi = s.facts.range
  what = f"stated range ({lo}, {hi}) holds and is tight (float64, |x| <= 1e4 and +-inf)"
  tol = lambda b: 1e-12 * max(1.0, abs(b))  # noqa: E731
  i, j = int(np.argmin(y)), int(np.argmax(y))
  if y[i] < lo - tol(lo):
    return point("range", False, what, DENSE[i], y[i], lo, tol(lo))
  if y[j] > hi + tol(hi):
    return point("range", False, what, DENSE[j], y[j], hi, tol(hi))
  xs = np.concatenate([DENSE, [-np.inf, np.inf]])
  seen = np.concatenate([y, np.where(np.isnan(y_inf), y[[0, -1]], y_inf)])
  k, m = int(np.argmin(seen)), int(np.argmax(seen))
  # Tight: each bound is approached on the grid or at +-inf.
  low = lo + 1e-6 * max(1.0, abs(lo)) if np.isfinite(lo) else -1e3
  if seen[k] > low:
    return point("range", False, f"{what}: the lower bound is never approached",
                 xs[k], seen[k], lo, low - lo if np.isfinite(lo) else math.inf)
  high = hi - 1e-6 * max(1.0, abs(hi)) if np.isfinite(hi) else 1e3
  if seen[m] < high:
    return point("range", False, f"{what}: the upper bound is never approached",
                 xs[m], seen[m], hi, hi - high if np.isfinite(hi) else math.inf)
  return CheckResult("range", True, what)


@_facts_check("monotonic")
def _monotonic(s: Subject, y, dy, y_inf, dy_inf) -> CheckResult:
  fin = np.isfinite(y)  # exponential overflows at the right end
  steps, xs = np.diff(y[fin]), DENSE[fin][1:]
  i = int(np.argmin(steps))
  if s.facts.monotonic:
    tol = 1e-12 * max(1.0, np.abs(y[fin]).max())
    if steps[i] < -tol:
      return point("monotonic", False, "stated non-decreasing: f(x) falls", xs[i],
                   steps[i], 0.0, tol)
    j = int(np.argmin(dy))
    return point("monotonic", dy[j] >= -1e-12, "stated non-decreasing: f' >= 0",
                 DENSE[j], dy[j], 0.0, 1e-12)
  return point("monotonic", steps[i] < -1e-9, "stated not monotonic: f(x) falls"
               " somewhere", xs[i], steps[i], 0.0, 1e-9)


@_facts_check("max_slope")
def _max_slope(s: Subject, y, dy, y_inf, dy_inf) -> CheckResult:
  top, at = s.facts.max_slope, s.facts.max_slope_at
  i = int(np.argmax(np.abs(dy)))
  what = f"stated sup |f'| = {top} at x = {at}"
  if math.isinf(top):
    ok = abs(dy[i]) > 1e3 or bool(np.isinf(dy_inf).any())
    return point("max_slope", ok, f"{what}: |f'| grows past 1e3", DENSE[i],
                 abs(dy[i]), 1e3, 0.0)
  if abs(dy[i]) > top * (1 + 1e-9) + 1e-12:
    return point("max_slope", False, f"{what}: exceeded", DENSE[i], abs(dy[i]), top,
                 top * 1e-9 + 1e-12)
  if math.isinf(at):
    reached = abs(dy_inf[int(at > 0)])
  else:
    # A kink's one-sided limit counts: look just beside it too.
    d = s.derivative or grad(s.fn)
    with jax.enable_x64(True), jax.disable_jit():
      reached = np.abs(np.asarray(d(jnp.array([at - 1e-7, at, at + 1e-7])))).max()
  return point("max_slope", reached >= top * (1 - 1e-6), f"{what}: reached there", at,
               reached, top, top * 1e-6)


@_facts_check("zero_centred")
def _zero_centred(s: Subject, y, dy, y_inf, dy_inf) -> CheckResult:
  with jax.disable_jit():
    f0 = float(s.fn(jnp.float32(0.0)))
  actual = f0 == 0 and y.min() < 0 < y.max()
  what = (f"stated zero_centred={s.facts.zero_centred} (f(0) = 0 and f takes both"
          f" signs); f(0) = {f0:.6g}, f ranges over [{y.min():.6g}, {y.max():.6g}]")
  return point("zero_centred", actual == s.facts.zero_centred, what, 0.0, f0, 0.0, 0.0,
               "float32")


@_facts_check("saturates")
def _saturates(s: Subject, y, dy, y_inf, dy_inf) -> CheckResult:
  far = np.abs(dy[[0, -1]])  # f' at -1e4 and 1e4
  flat = (far < 1e-6) & (np.abs(dy_inf) == 0)
  expected = {"none": [False, False], "left": [True, False],
              "right": [False, True], "both": [True, True]}[s.facts.saturates]
  seen = {(False, False): "none", (True, False): "left", (False, True): "right",
          (True, True): "both"}[tuple(flat.tolist())]
  side = 0 if flat[0] != expected[0] else 1
  return point("saturates", flat.tolist() == expected,
               f"stated saturating side(s) '{s.facts.saturates}' (f' -> 0 at |x| = 1e4"
               f" and +-inf); seen '{seen}'", DENSE[[0, -1]][side], dy[[0, -1]][side],
               0.0, 1e-6)


CHECKS = {
    "range": _range,
    "monotonic": _monotonic,
    "max_slope": _max_slope,
    "zero_centred": _zero_centred,
    "saturates": _saturates,
}


# --- every float type ------------------------------------------------------------


def _limit(values: Sequence[float]) -> float:
  """The common limit of `values` far out: +-inf, a number, or NaN if none."""
  v = [float(u) for u in values]
  if all(abs(u) > 1e15 for u in v) and len({np.sign(u) for u in v}) == 1:
    return float(np.sign(v[0]) * np.inf)
  if max(abs(u - v[-1]) for u in v) <= 1e-12 * max(1.0, abs(v[-1])):
    return v[-1]
  return math.nan


def estimated_limits(s: Subject) -> tuple[tuple[float, float], tuple[float, float]]:
  """((f(-inf), f(inf)), (f'(-inf), f'(inf))) from float64 values far out."""
  with jax.enable_x64(True), jax.disable_jit():
    x = jnp.asarray(np.concatenate([-FAR, FAR]), jnp.float64)
    y, d = np.asarray(s.fn(x)), np.asarray(grad(s.fn)(x))
  n = len(FAR)
  return (_limit(y[:n]), _limit(y[n:])), (_limit(d[:n]), _limit(d[n:]))


def _limits(name: str, what: str, got, want, fi, dtype: str, stated: bool) -> CheckResult:
  rows, undefined = [], []
  for g, w, side in zip(got, want, (-np.inf, np.inf)):
    if np.isnan(w):
      rows.append((side, g, w, 0.0, bool(np.isnan(g))))
      continue
    if np.isnan(g) and not stated:
      # No value at +-inf (inf * 0 in x * sigmoid(x), as jax.nn.silu gives)
      # while the limit exists: not an error of f, which is then NaN only at
      # an infinite input. A number other than the limit still is.
      undefined.append(f"{'-' if side < 0 else '+'}inf")
      continue
    if np.isinf(w) or abs(w) > float(fi.max):
      rows.append((side, g, np.sign(w) * np.inf, 0.0, bool(g == np.sign(w) * np.inf)))
    else:
      tol = 4 * float(fi.eps) * max(1.0, abs(w))
      rows.append((side, g, w, tol, bool(abs(g - w) <= tol)))
  if undefined:
    what += (f"; NaN at {' and '.join(undefined)} accepted (the limit exists;"
             " limits= holds f to it)")
  if not rows:
    return CheckResult(name, True, what)
  bad = [r for r in rows if not r[4]]
  x, g, w, tol, ok = (bad or rows)[0]
  return point(name, not bad, what, x, g, w, tol, dtype)


def _rounding(s: Subject, dtype: str, fi, xin, y, ty, td) -> CheckResult:
  """float16 and bfloat16 are computed in float32 and rounded once: to the
  type's precision, allowing for an input perturbation of a few eps
  (eps |x f'(x)|) and for XLA flushing subnormal intermediates to zero, which
  loses what lies below tiny * |x| in a product such as x * exp(x)."""
  eps, scale = float(fi.eps), np.maximum(1, np.abs(xin))
  with np.errstate(over="ignore", invalid="ignore"):  # exp(1e4) * 1e4: skipped
    tol = 2 * eps * (np.abs(ty) + np.abs(xin * td)) + float(fi.tiny) * scale
  # At a jump, the threshold rounded to the type may fall on either side.
  jumps = np.array(list(s.kinks) or [np.inf])
  at_jump = np.min(np.abs(xin[:, None] - jumps[None, :]), axis=1) <= 2 * eps * scale
  skip = (np.abs(ty) > float(fi.max)) | at_jump
  return compare("rounding", f"{dtype} values within rounding of float64", xin, y,
                 np.where(skip, y, ty), np.where(skip, np.inf, np.nan_to_num(tol)), dtype)


def dtype_checks(s: Subject, names: Iterable[str], dtypes: Iterable[str]) -> list[CheckResult]:
  """The DTYPE_CHECKS in `names`, one result per check and float type."""
  names = list(names)
  if not float64_available():
    return [no_float64(n) for n in names]
  value_limits, slope_limits = s.limits or estimated_limits(s)
  source = "stated" if s.limits else "estimated from float64 at |x| = 1e20 ... 1e40"

  both = lambda x: (s.fn(x), grad(s.fn)(x))

  def run_(x):
    return tuple(np.asarray(a, np.float64) for a in run(both, x))

  results = []
  n = len(FINITE)
  for dtype in dtypes:
    fi = jnp.finfo(dtype)
    with jax.enable_x64(True):
      x = jnp.asarray(np.concatenate([FINITE, SPECIAL]), dtype)
      y, d = run_(x)
      # float64 at the rounded inputs is the truth to compare with.
      xin = np.asarray(x[:n], np.float64)
      ty, td = run_(jnp.asarray(xin, jnp.float64))
    for name in names:
      label = f"{name}[{dtype}]"
      if name == "finite":
        fits = (np.abs(ty) <= float(fi.max)) & (np.abs(td) <= float(fi.max))
        bad = fits & ~(np.isfinite(y[:n]) & np.isfinite(d[:n]))
        i = int(np.argmax(bad))
        value = y[i] if not np.isfinite(y[i]) else d[i]
        r = point(label, not bad.any(), "values and jax.grad finite on [-1e4, 1e4]"
                  " wherever the float64 result fits", xin[i], value, ty[i], 0.0, dtype)
      elif name == "limits":
        r = min(
            (_limits(label, f"f(-inf), f(inf) = {value_limits} ({source})",
                     y[n:n + 2], value_limits, fi, dtype, s.limits is not None),
             _limits(label, f"jax.grad(f)(-inf), (inf) = {slope_limits} ({source})",
                     d[n:n + 2], slope_limits, fi, dtype, s.limits is not None)),
            key=lambda r: r.ok,
        )
      elif name == "nan":
        # The value must carry a NaN forward. jax.grad of a plain function
        # may give 0 there (jax.nn.relu's rule: where(x > 0, t, 0)) and is
        # accepted; a stated derivative must give NaN, as the catalogue's do.
        grad_ok = np.isnan(d[-1]) or (s.derivative is None and d[-1] == 0)
        ok = bool(np.isnan(y[-1]) and grad_ok)
        what = ("NaN in, NaN out (value and gradient)" if s.derivative is not None
                else "NaN in, NaN out (value; jax.grad NaN or 0)")
        r = point(label, ok, what, math.nan,
                  y[-1] if not np.isnan(y[-1]) else d[-1], math.nan, 0.0, dtype)
      elif dtype in ("float16", "bfloat16"):
        r = _rounding(s, dtype, fi, xin, y[:n], ty, td)
        r = CheckResult(label, r.ok, r.detail, r.worst)
      else:
        continue
      results.append(r)
  return results
