"""`check()`: what the registry-wide tests hold every activation to.

>>> report = activations.check("elu(alpha=0.5)")
>>> report.ok, report["derivative"].worst

The checks, by name (`ALL_CHECKS`):

- elementwise: under jit, f maps a float32 array to one of the same shape and
  a float dtype, equals f applied to each element alone, and f and jax.grad(f)
  are finite on [-6, 6].
- derivative: the analytic derivative equals jax.grad of the formula on a
  grid out to +-1e4, away from kinks (float64: rtol 1e-9, atol 1e-12).
- custom_jvp: jax.grad of the function is the analytic derivative (float32).
- check_grads: `jax.test_util.check_grads` in float64 away from kinks, second
  order where the facts say C2 or smoother.
- jit: jitted and eager values and gradients agree to a few ulp (float32).
- kinks: jax.grad at each stated kink is the stated value (float32, float64).
- range, monotonic, max_slope, zero_centred, saturates: the stated `Facts`
  hold on a dense float64 grid and at +-inf.
- finite, limits, nan (float32, bfloat16, float16, float64) and rounding
  (float16, bfloat16): values and gradients are finite for finite inputs in
  [-1e4, 1e4] wherever the float64 result fits the type; at +-inf they are
  the limits (stated with `limits=`, else estimated from float64 values at
  |x| = 1e20 ... 1e40); NaN propagates; half types are within their rounding
  of the float64 result.

`CHEAP_CHECKS` (elementwise, derivative) is what `register()` and
'module:attribute' specs run. High-precision references (mpmath) are not
needed here; actlab's own tests add them for the catalogue.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import jax
import numpy as np

from actlab.activations import fact_checks, gradient_checks, registry, wrap
from actlab.activations.entries import Entry
from actlab.activations.metadata import Facts
from actlab.activations.report import (  # noqa: F401  (re-exported)
    CheckError,
    CheckReport,
    CheckResult,
    Subject,
    WorstPoint,
    float64_available,
    one_sided_slopes,
)

Array = jax.Array

CHEAP_CHECKS = ("elementwise", "derivative")
FACT_CHECKS = tuple(fact_checks.CHECKS)
DTYPE_CHECKS = ("finite", "limits", "nan", "rounding")
ALL_CHECKS = (*gradient_checks.CHECKS, *FACT_CHECKS, *DTYPE_CHECKS)
DTYPES = ("float32", "bfloat16", "float16", "float64")
_CHECKS = {**gradient_checks.CHECKS, **fact_checks.CHECKS}


def check(
    activation: Any,
    derivative: Callable[[Array], Array] | None = None,
    *,
    kinks: Mapping[float, float] | None = None,
    facts: Facts | None = None,
    limits: tuple[tuple[float, float], tuple[float, float]] | None = None,
    checks: Iterable[str] | None = None,
    dtypes: Iterable[str] = DTYPES,
    name: str | None = None,
) -> CheckReport:
  """Runs the registry's checks on an activation; returns a `CheckReport`.

  Args:
    activation: a spec string ('elu(alpha=0.5)', 'my_pkg.acts:fn'), an
      `Entry`, or a function f(x) of one array.
    derivative: for a function, its analytic derivative f'(x); the checks
      then test f with this derivative as its custom JVP, as `register`
      would use it. Without one, jax.grad of f is its derivative.
    kinks: {x: f'(x)} at the points where f is not differentiable (entries
      state their own).
    facts: the `Facts` to hold f to (entries state their own).
    limits: ((f(-inf), f(inf)), (f'(-inf), f'(inf))); estimated from
      float64 values far out when not given.
    checks: names from `ALL_CHECKS` (default: all of them).
    dtypes: the float types of the dtype checks.
    name: how the report names the activation.

  Checks that need float64 are skipped when this backend has none.
  """
  selected = ALL_CHECKS if checks is None else tuple(checks)
  unknown = sorted(set(selected) - set(ALL_CHECKS))
  if isinstance(checks, str) or unknown:
    raise ValueError(
        f"checks= takes names from {list(ALL_CHECKS)}, got {checks!r}."
    )
  # Concrete values even when first asked inside jax.jit (a model naming
  # 'my_pkg.acts:fn' resolves it while being traced): the checks compare
  # numbers, and tracing the caller must not turn them into tracers.
  with jax.ensure_compile_time_eval():
    return _check(activation, derivative, kinks, facts, limits, selected, dtypes, name)


def _check(activation, derivative, kinks, facts, limits, selected, dtypes, name):
  s = _subject(activation, derivative, kinks, facts, limits, name)
  results = [_run(c, _CHECKS[c], s) for c in selected if c not in DTYPE_CHECKS]
  wanted = [c for c in selected if c in DTYPE_CHECKS]
  if wanted:
    dtypes = [jax.numpy.dtype(d).name for d in dtypes]
    try:
      results += fact_checks.dtype_checks(s, wanted, dtypes)
    except Exception as e:  # a check that cannot run has failed, and says why
      results += [CheckResult(c, False, f"raised {type(e).__name__}: {e}") for c in wanted]
  return CheckReport(s.label, tuple(_kink_hint(s, r) for r in results))


def _kink_hint(s: Subject, r: CheckResult) -> CheckResult:
  """A failure at a point where f has a kink nobody stated says so, and how
  to state it."""
  x = None if r.ok or r.worst is None else r.worst.x
  if x is None or not math.isfinite(x) or any(abs(x - k) <= 1e-2 for k in s.kinks):
    return r
  try:
    left, right, kink = one_sided_slopes(s.formula, np.array([x]))
  except Exception:  # the hint is a courtesy; the failure stands without it
    return r
  if not kink[0]:
    return r
  hint = (f"; f has a kink at x={x:g} (slope {left[0]:.6g} left of it, {right[0]:.6g}"
          f" right of it) that is not stated: pass kinks={{{x!r}: f'({x:g})}} (the"
          " derivative to use there) to check() or Entry")
  return dataclasses.replace(r, detail=r.detail + hint)


def _subject(activation, derivative, kinks, facts, limits, name) -> Subject:
  if isinstance(activation, str):
    e, target = registry.resolve(activation)
    if e is None:  # 'module:attribute' naming a plain function
      return _subject(target, derivative, kinks, facts, limits, name or activation)
    label = name or activation
  elif isinstance(activation, Entry):
    e, target = activation, activation.bind()
    label = name or e.name
  else:
    return _function(activation, derivative, kinks, facts, limits, name)
  if derivative is not None:
    raise ValueError("derivative= is for plain functions; an entry states its own.")
  if e.kind != "elementwise":
    raise ValueError(
        f"check() covers elementwise activations; {e.name!r} is a {e.kind} entry."
    )
  if facts is None and e.facts is not None:
    facts = e.facts if isinstance(e.facts, Facts) else e.facts(**target)
  return Subject(
      label, _compiled(e, target), functools.partial(_formula, e, target),
      None if e.autodiff else registry.analytic(e, target),
      dict(e.kinks(**target) if kinks is None else kinks), facts, limits,
  )


def _compiled(e: Entry, params: dict[str, Any]) -> Callable[[Array], Array]:
  """The registered function, or one built alike for an unregistered entry."""
  if registry.is_registered(e):
    return registry.built(e, params)
  return jax.jit(wrap.elementwise(e, params))


def _formula(e: Entry, params: dict[str, Any], x: Array) -> Array:
  return e.fn(x, **params)


def _function(fn, derivative, kinks, facts, limits, name) -> Subject:
  if registry.is_module(fn) or not callable(fn):
    raise ValueError(
        "check() takes a spec string, an Entry or a function f(x); got"
        f" {fn!r}. Modules with parameters are checked by training them."
    )
  label = name or getattr(fn, "__name__", None) or repr(fn)
  kinks = dict(kinks or {})
  if derivative is None:
    return Subject(label, fn, fn, None, kinks, facts, limits)
  e = Entry(label, fn, derivative, kinks=kinks, facts=facts)
  return Subject(label, _compiled(e, {}), fn, registry.analytic(e, {}), kinks, facts,
                 limits)


def _run(name: str, fn: Callable[[Subject], CheckResult], s: Subject) -> CheckResult:
  try:
    return fn(s)
  except Exception as e:  # a check that cannot run has failed, and says why
    return CheckResult(name, False, f"raised {type(e).__name__}: {e}")
