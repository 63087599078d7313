"""What `check()` returns, and the pieces its checks share.

A `CheckReport` holds one `CheckResult` per check; each names its worst
point (`WorstPoint`: x, the value, the expected value, the error and the
tolerance), so a failure says where to look.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from actlab.activations.metadata import Facts

Array = jax.Array

MIDDLE = np.linspace(-6, 6, 241)
GRID = np.concatenate([-np.logspace(-3, 4, 60), [0.0], np.logspace(-3, 4, 60), MIDDLE])
# Dense in the middle, log-spaced tails out to 1e4.
DENSE = np.unique(np.concatenate([
    np.linspace(-20, 20, 40001), -np.logspace(-6, 4, 2001), np.logspace(-6, 4, 2001)
]))
FINITE = np.unique(np.concatenate([
    -np.logspace(-4, 4, 161), [0.0], np.logspace(-4, 4, 161), np.linspace(-10, 10, 201)
]))
FAR = np.array([1e20, 3e25, 1e30, 7e33, 1e40])


class CheckError(ValueError):
  """An activation failed its checks; `report` (a `CheckReport`) says where."""

  def __init__(self, message: str, report: CheckReport):
    super().__init__(message)
    self.report = report


@dataclasses.dataclass(frozen=True)
class WorstPoint:
  """Where a check came closest to failing (or failed worst)."""

  x: float
  value: float  # what the activation gave
  expected: float  # what the check expected
  error: float  # |value - expected|
  tolerance: float
  dtype: str

  def __str__(self) -> str:
    return (
        f"x={self.x:.6g} ({self.dtype}): got {self.value:.9g}, expected"
        f" {self.expected:.9g} (error {self.error:.3g}, tolerance {self.tolerance:.3g})"
    )


@dataclasses.dataclass(frozen=True)
class CheckResult:
  """One check: passed or not, what it compared, and its worst point."""

  name: str
  ok: bool
  detail: str
  worst: WorstPoint | None = None
  skipped: bool = False

  def __str__(self) -> str:
    status = "skipped" if self.skipped else ("ok" if self.ok else "FAILED")
    worst = f"\n      worst at {self.worst}" if self.worst and not self.ok else ""
    return f"  {self.name:<22} {status:<7} {self.detail}{worst}"


@dataclasses.dataclass(frozen=True)
class CheckReport:
  """What `check()` returns: `ok`, each check's result, the worst point."""

  subject: str
  results: tuple[CheckResult, ...]

  @property
  def ok(self) -> bool:
    return all(r.ok for r in self.results)

  @property
  def failures(self) -> tuple[CheckResult, ...]:
    return tuple(r for r in self.results if not r.ok)

  @property
  def worst(self) -> WorstPoint | None:
    """The worst point of the failed check that failed worst (error relative
    to tolerance), or None when every check passed."""
    points = [r.worst for r in self.failures if r.worst is not None]
    return max(points, key=badness, default=None)

  def __getitem__(self, name: str) -> CheckResult:
    for r in self.results:
      if r.name == name:
        return r
    raise KeyError(f"{name!r}; this report has {[r.name for r in self.results]}")

  def __str__(self) -> str:
    failed = len(self.failures)
    head = "ok" if self.ok else f"FAILED {failed} of {len(self.results)} checks"
    return "\n".join([f"check({self.subject}): {head}", *map(str, self.results)])


def badness(p: WorstPoint) -> float:
  if p.error == 0:
    return 0.0
  return p.error / p.tolerance if p.tolerance > 0 and np.isfinite(p.error) else math.inf


@dataclasses.dataclass(frozen=True, eq=False)  # hashed by identity
class Subject:
  """What the checks test: the function a model calls and what it claims."""

  label: str
  fn: Callable[[Array], Array]  # what a model calls
  formula: Callable[[Array], Array]  # what jax.grad differentiates
  derivative: Callable[[Array], Array] | None  # analytic f'(x), if stated
  kinks: dict[float, float]
  facts: Facts | None
  limits: tuple[tuple[float, float], tuple[float, float]] | None


@functools.cache
def float64_available() -> bool:
  """Whether this backend computes in float64 (with x64 enabled)."""
  try:
    with jax.enable_x64(True):
      y = jnp.exp(jnp.ones((2,), jnp.float64))
      return y.dtype == jnp.float64 and abs(float(y[0]) - math.e) < 1e-15
  except Exception:
    return False


def no_float64(name: str) -> CheckResult:
  return CheckResult(name, True, "needs float64, which this backend lacks", skipped=True)


def compare(name, what, x, got, want, tol, dtype) -> CheckResult:
  """got == want within tol everywhere (NaN matches NaN); the worst point is
  the one with the largest error relative to its tolerance."""
  x, got, want = (np.asarray(v, np.float64) for v in (x, got, want))
  tol = np.broadcast_to(np.asarray(tol, np.float64), got.shape)
  with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
    same = (got == want) | (np.isnan(got) & np.isnan(want))
    err = np.where(same, 0.0, np.abs(got - want))
    good = same | (err <= tol)
    ratio = np.where(same, 0.0, np.where(tol > 0, err / tol, np.inf))
  ratio = np.where(np.isnan(ratio), np.inf, ratio)
  off = int((~good).sum())
  detail = f"{what}, {len(x)} points" + (f": {off} off" if off else "")
  if not len(x):
    return CheckResult(name, True, detail)
  i = int(np.argmax(np.where(good, -1.0, ratio) if off else ratio))
  worst = WorstPoint(float(x[i]), float(got[i]), float(want[i]), float(err[i]),
                     float(tol[i]), dtype)
  return CheckResult(name, off == 0, detail, worst)


def point(name: str, ok: bool, detail: str, x, value, expected, tol, dtype="float64"):
  """A result whose worst point is the one given."""
  value, expected = float(value), float(expected)
  same = value == expected or (math.isnan(value) and math.isnan(expected))
  diff = abs(value - expected)
  error = 0.0 if same else (diff if math.isfinite(diff) else math.inf)
  worst = WorstPoint(float(x), value, expected, error, float(tol), dtype)
  return CheckResult(name, bool(ok), detail, worst)


def away_from_kinks(kinks: Mapping[float, float], x: np.ndarray, eps: float) -> np.ndarray:
  ks = np.array(list(kinks) or [np.inf])
  return x[np.min(np.abs(x[:, None] - ks[None, :]), axis=1) > eps]


def one_sided_slopes(f: Callable[[Array], Array], x: np.ndarray) -> tuple[np.ndarray, ...]:
  """(left, right) difference quotients of f at x, and whether they differ:
  a kink. In float64 with a step of 1e-7 |x|, a smooth f's two slopes differ
  by about f''(x) 1e-7; a kink's by the jump in f'."""
  x = np.asarray(x, np.float64)
  h = 1e-7 * np.maximum(1.0, np.abs(x))
  with jax.enable_x64(True), jax.disable_jit():
    at = lambda v: np.asarray(f(jnp.asarray(v, jnp.float64)), np.float64)  # noqa: E731
    y = at(x)
    left, right = (y - at(x - h)) / h, (at(x + h) - y) / h
  with np.errstate(invalid="ignore"):
    kink = np.abs(right - left) > 1e-4 * (1.0 + np.abs(left) + np.abs(right))
  return left, right, kink & np.isfinite(left) & np.isfinite(right)


def run(f: Callable[..., Any], *args: Any, eager: bool = True) -> Any:
  """f(*args), op by op (eager) or as one jitted program.

  Eager evaluation compiles each primitive once per shape and dtype and
  reuses it for every activation checked in the same process (the
  catalogue's tests); one program is faster for a single activation.
  """
  if not eager:
    return jax.jit(f)(*args)
  with jax.disable_jit():
    return f(*args)


def grad(f: Callable[[Array], Array]) -> Callable[[Array], Array]:
  return jax.vmap(jax.grad(f))
