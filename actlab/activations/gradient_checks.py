"""The checks on values and derivatives: the cheap ones `register()` runs,
check_grads, jit against eager, kinks."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.test_util import check_grads

from actlab.activations.report import (
    GRID,
    MIDDLE,
    CheckResult,
    Subject,
    away_from_kinks,
    compare,
    float64_available,
    grad,
    no_float64,
    one_sided_slopes,
    point,
    run,
)

Array = jax.Array


# --- the cheap checks ----------------------------------------------------------


def _elementwise(s: Subject) -> CheckResult:
  name = "elementwise"
  x = jnp.asarray(MIDDLE, jnp.float32)
  y = jax.jit(s.fn)(x)
  if getattr(y, "shape", None) != x.shape or not jnp.issubdtype(y.dtype, jnp.inexact):
    return CheckResult(
        name, False, f"f(float32 array of shape {x.shape}) gave"
        f" {type(y).__name__} of shape {getattr(y, 'shape', None)} and dtype"
        f" {getattr(y, 'dtype', None)}; an activation keeps the shape and returns floats",
    )
  try:
    alone = jax.jit(jax.vmap(s.fn))(x)
  except Exception as e:
    return CheckResult(name, False, "f applied to each element alone (an activation is"
                       f" elementwise) raised {type(e).__name__}: {e}")
  eps = float(jnp.finfo(jnp.float32).eps)
  r = compare(name, "f(x) vs f applied to each element alone, and finiteness on"
               " [-6, 6] (float32)", x, y, alone, 4 * eps * (1 + np.abs(alone)), "float32")
  d = np.asarray(jax.jit(grad(s.fn))(x))
  kink = ~np.isin(MIDDLE, away_from_kinks(s.kinks, MIDDLE, 0.0))  # f' may be inf there
  bad = ~np.isfinite(np.asarray(y)) | (~np.isfinite(d) & ~kink)
  if r.ok and bad.any():
    i = int(np.argmax(bad))
    return point(name, False, "f or jax.grad(f) is not finite on [-6, 6] (float32)",
                  MIDDLE[i], float(y[i]) if not np.isfinite(y[i]) else d[i], 0.0, 0.0,
                  "float32")
  return r


def _derivative(s: Subject) -> CheckResult:
  name = "derivative"
  if s.derivative is None:
    return CheckResult(name, True, "no analytic derivative stated: jax.grad is the"
                       " derivative", skipped=True)
  x64 = float64_available()
  dtype = jnp.float64 if x64 else jnp.float32
  with jax.enable_x64(x64):
    x = jnp.asarray(away_from_kinks(s.kinks, GRID, 1e-2), dtype)
    # One program each: register() runs this for a single entry.
    autodiff = run(grad(s.formula), x, eager=False)
    analytic = run(s.derivative, x, eager=False)
  # The analytic form may keep a true tiny value where autodiff of a formula
  # rounds to 0 in a tail, hence the absolute floor.
  rtol, atol = (1e-9, 1e-12) if x64 else (1e-5, 1e-6)
  tol = atol + rtol * np.abs(np.asarray(autodiff, np.float64))
  r = compare(name, f"analytic f'(x) vs jax.grad of the formula out to |x| = 1e4"
               f" ({jnp.dtype(dtype).name})", x, analytic, autodiff, tol, jnp.dtype(dtype).name)
  return r


# --- the full checks -----------------------------------------------------------


def _custom_jvp(s: Subject) -> CheckResult:
  if s.derivative is None:
    return CheckResult("custom_jvp", True, "no analytic derivative stated", skipped=True)
  x = jnp.asarray(GRID, jnp.float32)
  got, want = run(grad(s.fn), x), run(s.derivative, x)
  return compare("custom_jvp", "jax.grad(f) vs the analytic derivative (float32)",
                  x, got, want, 1e-6 * np.abs(np.asarray(want, np.float64)), "float32")


def _check_grads(s: Subject) -> CheckResult:
  name = "check_grads"
  if not float64_available():
    return no_float64(name)
  smooth = s.facts is not None and s.facts.smoothness in ("C2", "Cinf")
  order, eps = (2, 1e-4) if smooth else (1, 1e-6)
  what = (f"jax.test_util.check_grads, order {order}, fwd and rev, float64, on"
          " [-4, 4] away from kinks")
  f = s.fn
  x = away_from_kinks(s.kinks, np.linspace(-4, 4, 33), 0.05)
  # An unstated kink (relu's 0) is no error when jax.grad gives a one-sided
  # slope or one between them there, as every subgradient rule does; it is
  # named, and only the points around it are left to check_grads.
  left, right, kink = one_sided_slopes(s.formula, x)
  found = x[kink]
  if found.size:
    with jax.enable_x64(True), jax.disable_jit():
      g = np.asarray(grad(f)(jnp.asarray(found)), np.float64)
    lo, hi = np.minimum(left[kink], right[kink]), np.maximum(left[kink], right[kink])
    tol = 1e-5 * (1 + np.abs(hi) + np.abs(lo))
    inside = (g >= lo - tol) & (g <= hi + tol)
    if not inside.all():
      i = int(np.argmin(inside))
      return point(name, False, f"{what}: jax.grad at an unstated kink is neither"
                   " one-sided slope nor between them", found[i], g[i],
                   (lo[i] + hi[i]) / 2, (hi[i] - lo[i]) / 2 + tol[i])
    what += (f"; unstated kinks at x = {', '.join(f'{v:g}' for v in found)}, where"
             " jax.grad gives a one-sided slope (kinks={x: f'(x)} states them)")
    x = x[np.min(np.abs(x[:, None] - found[None, :]), axis=1) > 0.05]
  with jax.enable_x64(True), jax.disable_jit():
    x = jnp.asarray(x)
    try:
      # A C1 function's f'' may jump (soft_sign at 0): a smaller step keeps
      # the finite differences across such a point within tolerance.
      check_grads(f, (x,), order=order, modes=("fwd", "rev"), eps=eps)
      return CheckResult(name, True, what)
    except AssertionError as e:
      message = str(e).strip().splitlines()[0]
      g = np.asarray(grad(f)(x))
      fd = np.asarray((f(x + eps) - f(x - eps)) / (2 * eps))
  r = compare(name, what, x, g, fd, 1e-5 * (1 + np.abs(fd)), "float64")
  return dataclasses.replace(r, ok=False, detail=f"{what}: {message}")


def _jit(s: Subject) -> CheckResult:
  d = grad(s.fn)
  x = jnp.asarray(np.concatenate([GRID, [-np.inf, np.inf, np.nan]]), jnp.float32)
  y, dy = jax.jit(lambda v: (s.fn(v), d(v)))(x)
  with jax.disable_jit():
    ey, ed, ed2 = s.fn(x), d(x), grad(jax.grad(s.fn))(x)
  # XLA may fuse x**3 or a*b+c into one rounding: allow a few ulp of the
  # result, of x where the result is ill-conditioned (near zeros), and of the
  # terms, whose size is about max(1, |x|): float32 forms that follow jax.nn
  # cancel in a tail (x + sqrt(x^2 + b), 1 + tanh(u)), where one ulp more or
  # less in a term is many in the result.
  eps = float(np.finfo(np.float32).eps)
  xs = np.nan_to_num(np.asarray(x, np.float64), nan=0.0, posinf=0.0, neginf=0.0)
  got, want, tol = [], [], []
  for a, b, slope in ((y, ey, ed), (dy, ed, ed2)):
    b, slope = np.asarray(b, np.float64), np.asarray(slope, np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
      t = 4 * eps * (np.abs(b) + np.abs(xs * slope) + 4 * np.maximum(1, np.abs(xs)))
    got.append(np.asarray(a, np.float64))
    want.append(b)
    tol.append(np.nan_to_num(t, nan=0.0))
  return compare("jit", "jitted vs eager values, then gradients (float32)",
                 np.concatenate([x, x]), *map(np.concatenate, (got, want, tol)), "float32")


def _kinks(s: Subject) -> CheckResult:
  if not s.kinks:
    return CheckResult("kinks", True, "no kinks stated", skipped=True)
  g = jax.grad(s.fn)
  rows = []
  with jax.disable_jit():
    for x, d in s.kinks.items():
      rows.append((x, float(g(jnp.float32(x))), d, max(1e-6 * abs(d), 1e-12), "float32"))
      if float64_available():
        with jax.enable_x64(True):
          rows.append((x, float(g(jnp.float64(x))), d, max(1e-12 * abs(d), 1e-12),
                       "float64"))
  what = f"jax.grad at the stated kinks {s.kinks}"
  worst = max(rows, key=lambda r: abs(r[1] - r[2]) / r[3])
  ok = all(abs(got - d) <= tol for _, got, d, tol, _ in rows)
  return point("kinks", ok, what, *worst)


CHECKS: dict[str, Callable[[Subject], CheckResult]] = {
    "elementwise": _elementwise,
    "derivative": _derivative,
    "custom_jvp": _custom_jvp,
    "check_grads": _check_grads,
    "jit": _jit,
    "kinks": _kinks,
}
