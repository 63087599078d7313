"""Numerical robustness of every elementwise activation, in every float type.

- float32, bfloat16, float16, float64: values and gradients are finite for
  finite inputs in [-1e4, 1e4] wherever the true result is finite in that
  type; +-inf give the mathematical limit (NaN where there is none); NaN
  propagates through values and gradients.
- float64: values and gradients (through the registered custom JVP) agree
  with mpmath to within ULPS units in the last place in the tails
  (|x| > MIDDLE, out to 1e4 and to the underflow threshold). In the middle,
  where the zeros of values and slopes lie and any floating-point formula
  loses relative precision near them, and for the entries in MIXED
  everywhere, the bound adds the effect of an input perturbation of ULPS
  ulp: ULPS * eps * |x g'(x)|.
"""

import functools

import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest
from test_activations import SPECS

from actlab import activations

# XLA's own float64 tanh and expm1 are off by up to 4 and 3 ulp; formulas
# that compose them need a little more.
ULPS = 8
MIDDLE = 8.0  # |x| <= MIDDLE: mixed bound; beyond, in the tails: strict
DPS = 100  # mpmath digits: enough for x up to 1e40 and steps of 1e-30 |x|

# Entries whose float64 error is bounded only as a mixed forward/backward
# error, and why.
MIXED = {
    "gelu": "XLA's erfc rounds z**2 inside exp(-z**2): ~x**2/2 ulp in the left tail",
    "gelu(approximate=True)": "the cubic inner argument is rounded: error ~ |x f'|",
    "gcu": "periodic: cos(x) rounds to O(eps |x|) absolutely near its zeros",
    "sine": "periodic: sin(w0 x) rounds to O(eps |x|) absolutely near its zeros",
    "sine(w0=2.0)": "periodic, as sine",
    "snake": "periodic: 1 + sin(2ax) has double zeros",
    "snake(a=2.0)": "periodic, as snake",
}

_SELU_ALPHA = mp.mpf("1.6732632423543772848170429916717")
_SELU_SCALE = mp.mpf("1.0507009873554804934193349852946")


def _s(x):
  return 1 / (1 + mp.exp(-x))


def _sp(x):
  return mp.log1p(mp.exp(x)) if x < 0 else x + mp.log1p(mp.exp(-x))


def _where(c, a, b):
  return a if c else b


def _gelu(x, approximate):
  if approximate:
    u = mp.sqrt(2 / mp.pi) * (x + mp.mpf(0.044715) * x**3)
    return x * _s(2 * u)
  return x * mp.ncdf(x)


def _squareplus(x, b):
  s = mp.sqrt(x * x + b)
  return (x + s) / 2 if x >= 0 else b / (2 * (s - x))


def _isru(x, alpha):
  return x / mp.sqrt(1 + alpha * x * x)


# Independent high-precision definitions, straight from the papers.
REFERENCE = {
    "abs": lambda x: abs(x),
    "bent_identity": lambda x: (mp.sqrt(x * x + 1) - 1) / 2 + x,
    "celu": lambda x, alpha: _where(x > 0, x, alpha * mp.expm1(x / alpha)),
    "elish": lambda x: x * _s(x) if x >= 0 else mp.expm1(x) * _s(x),
    "elu": lambda x, alpha: _where(x > 0, x, alpha * mp.expm1(x)),
    "exponential": mp.exp,
    "gaussian": lambda x: mp.exp(-x * x),
    "gcu": lambda x: x * mp.cos(x),
    "gelu": _gelu,
    "hard_shrink": lambda x, threshold: _where(abs(x) > threshold, x, mp.mpf(0)),
    "hard_sigmoid": lambda x: min(max(x + 3, mp.mpf(0)), mp.mpf(6)) / 6,
    "hard_silu": lambda x: x * min(max(x + 3, mp.mpf(0)), mp.mpf(6)) / 6,
    "hard_tanh": lambda x: min(max(x, mp.mpf(-1)), mp.mpf(1)),
    "identity": lambda x: x,
    "isrlu": lambda x, alpha: _where(x >= 0, x, _isru(x, alpha)),
    "isru": _isru,
    "leaky_relu": lambda x, negative_slope: _where(x >= 0, x, negative_slope * x),
    "lisht": lambda x: x * mp.tanh(x),
    "log_sigmoid": lambda x: -_sp(-x),
    "logish": lambda x: x * mp.log1p(_s(x)),
    "mish": lambda x: x * mp.tanh(_sp(x)),
    "penalized_tanh": lambda x, a: _where(x > 0, mp.tanh(x), a * mp.tanh(x)),
    "relu": lambda x: max(x, mp.mpf(0)),
    "relu6": lambda x: min(max(x, mp.mpf(0)), mp.mpf(6)),
    "selu": lambda x: _SELU_SCALE * _where(x > 0, x, _SELU_ALPHA * mp.expm1(x)),
    "serf": lambda x: x * mp.erf(_sp(x)),
    "sigmoid": _s,
    "silu": lambda x: x * _s(x),
    "sine": lambda x, w0: mp.sin(w0 * x),
    "smish": lambda x: x * mp.tanh(mp.log1p(_s(x))),
    "snake": lambda x, a: x + mp.sin(a * x) ** 2 / a,
    "soft_shrink": lambda x, threshold: _where(
        x > threshold, x - threshold, _where(x < -threshold, x + threshold, mp.mpf(0))
    ),
    "soft_sign": lambda x: x / (1 + abs(x)),
    "softplus": _sp,
    "sparse_plus": lambda x: _where(
        x <= -1, mp.mpf(0), _where(x >= 1, x, (x + 1) ** 2 / 4)
    ),
    "sparse_sigmoid": lambda x: min(max(x + 1, mp.mpf(0)), mp.mpf(2)) / 2,
    "sqnl": lambda x: _where(abs(x) > 2, mp.sign(x), x - x * abs(x) / 4),
    "squareplus": _squareplus,
    "tanh": mp.tanh,
    # tanh(e^x) = 1 to 1e-19000 from x = 10 on; mpmath cannot hold e^(e^x).
    "tanh_exp": lambda x: x * (mp.tanh(mp.exp(x)) if x < 10 else 1),
    "tanh_shrink": lambda x: x - mp.tanh(x),
    "threshold": lambda x, threshold, value: _where(x > threshold, x, mp.mpf(value)),
}

# float64 check points: both tails to 1e4, the middle, the underflow edges.
POINTS = np.unique(np.concatenate([
    -np.logspace(-8, 4, 49), np.logspace(-8, 4, 49), np.linspace(-8, 8, 65),
    [-745.0, -720.0, -700.0, -100.0, -40.0, -38.5, -20.0, 20.0, 38.5, 40.0, 100.0,
     700.0, 720.0],
]))
# Far out, for the limits at +-inf.
FAR = [1e20, 3e25, 1e30, 7e33, 1e40]


def _ref_fn(spec):
  name, kw = activations.parse_spec(spec)
  e = activations.entry(name)
  params = {
      k: mp.mpf(v) if isinstance(v, float) else v for k, v in e.bind(**kw).items()
  }
  ref = REFERENCE[e.name]
  return lambda x: mp.mpf(ref(x, **params))


def step(x):
  """The finite-difference step at x."""
  return 1e-30 * max(1.0, abs(float(x)))


def _derivatives(F, x):
  """F(x), F'(x), F''(x) by central differences at high precision.

  The working precision grows until the differences keep 40 digits after
  cancellation (elu's slope at -178 is 6e-78 beside values near -1), up to
  the point where the slope is below anything float64 can hold.
  """
  dps = DPS
  while True:
    with mp.workdps(dps):
      x = mp.mpf(x)
      h = mp.mpf(step(x))
      lo, mid, hi = F(x - h), F(x), F(x + h)
      d1, d2 = hi - lo, hi - 2 * mid + lo
      top = max(abs(lo), abs(hi), mp.mpf(10) ** -400)
      lost = max(float(mp.log10(top / abs(d))) if d else 400 for d in (d1, d2))
      if lost + 100 < dps or dps >= 800:
        return mid, d1 / (2 * h), d2 / (h * h)
    dps = min(800, int(lost) + 110)


@functools.cache
def reference(spec):
  """(points, f, f', f'') at POINTS away from kinks, rounded to float64."""
  F = _ref_fn(spec)
  ks = np.array(list(activations.kinks(spec)) or [np.inf])
  x = POINTS[np.min(np.abs(POINTS[:, None] - ks[None, :]), axis=1) > 1e-6]
  with mp.workdps(DPS):
    rows = [[float(v) for v in _derivatives(F, xi)] for xi in x]
  return (x, *np.array(rows).T)


def _limit(values):
  """The common limit of `values` far out: +-inf, a number, or NaN if none."""
  v = [float(u) for u in values]
  if all(abs(u) > 1e15 for u in v) and len({np.sign(u) for u in v}) == 1:
    return np.sign(v[0]) * np.inf
  if max(abs(u - v[-1]) for u in v) <= 1e-12 * max(1.0, abs(v[-1])):
    return v[-1]
  return np.nan


@functools.cache
def limits(spec):
  """(f(-inf), f(inf)), (f'(-inf), f'(inf)) from mpmath far out."""
  F = _ref_fn(spec)
  with mp.workdps(DPS):
    sides = [[_derivatives(F, sign * x)[:2] for x in FAR] for sign in (-1, 1)]
  values = tuple(_limit([p[0] for p in side]) for side in sides)
  slopes = tuple(_limit([p[1] for p in side]) for side in sides)
  return values, slopes


def test_every_elementwise_entry_has_a_reference():
  assert sorted(REFERENCE) == activations.names()


def _check_ulps(spec, what, x, got, ref, dref, mixed, floor=0.0):
  eps = np.finfo(np.float64).eps
  tol = ULPS * np.spacing(np.abs(ref)) + np.finfo(np.float64).tiny + floor
  relax = mixed | (np.abs(x) <= MIDDLE)
  tol = tol + np.where(relax, ULPS * eps * np.abs(x * dref), 0.0)
  with np.errstate(invalid="ignore"):  # inf - inf where both are inf
    err = np.where(got == ref, 0.0, np.abs(got - ref))
  bad = ~((got == ref) | (err <= tol))
  if bad.any():
    i = np.argmax(np.where(bad, err / tol, 0))
    pytest.fail(
        f"{spec} {what}: {bad.sum()} of {len(x)} points off; worst at x={x[i]!r}:"
        f" got {got[i]!r}, mpmath {ref[i]!r}"
        f" ({err[i] / np.spacing(abs(ref[i])):.1f} ulp)"
    )


@pytest.mark.parametrize("spec", SPECS)
def test_float64_agrees_with_mpmath(spec):
  x, f, df, d2f = reference(spec)
  g = activations.get(spec)
  # Jitted, as models run it: XLA's rewrites (such as exp(a) * exp(b) ->
  # exp(a + b)) must not cost precision.
  with jax.enable_x64(True):
    xs = jnp.asarray(x, jnp.float64)
    got, got_d = (
        np.asarray(v) for v in jax.jit(lambda v: (g(v), jax.vmap(jax.grad(g))(v)))(xs)
    )
  mixed = spec in MIXED
  _check_ulps(spec, "value", x, got, f, df, mixed)
  # The reference slope is a central difference: allow its own error, O(h f'')
  # at a C1 joint and O(h^2) where the slope vanishes.
  h = np.array([step(v) for v in x])
  fd_error = h * np.abs(d2f) + h * h * (1 + np.abs(f))
  _check_ulps(spec, "gradient", x, got_d, df, d2f, mixed, fd_error)


@pytest.mark.parametrize("spec", SPECS)
def test_finite_limits_and_nan_in_every_dtype(spec):
  # activations.check runs these (finite, limits, nan, rounding) in float32,
  # bfloat16, float16 and float64; here the limits at +-inf come from mpmath.
  report = activations.check(spec, checks=activations.checks.DTYPE_CHECKS,
                             limits=limits(spec))
  assert report.ok, str(report)
  assert len(report.results) == 3 * 4 + 2  # rounding: float16 and bfloat16 only


@pytest.mark.parametrize(
    "spec, x, dtype",
    [
        ("elu", -40.0, jnp.float64),  # jax.nn.elu's gradient is 0.0
        ("squareplus", 300.0, jnp.float16),  # jax.nn.squareplus gives inf
        ("squareplus", -300.0, jnp.float16),
        ("gelu(approximate=True)", 200.0, jnp.float16),  # jax.nn: NaN gradient
        ("gelu(approximate=True)", -200.0, jnp.float16),
        ("log_sigmoid", -1000.0, jnp.float32),
        ("softplus", -100.0, jnp.float32),
    ],
)
def test_known_weak_spots_of_other_frameworks(spec, x, dtype):
  f = activations.get(spec)
  with jax.enable_x64(True):
    xv = jnp.asarray(x, dtype)
    y, d = float(f(xv)), float(jax.grad(f)(xv))  # jitted, as models run it
  F = _ref_fn(spec)
  with mp.workdps(DPS):
    want_y, want_d, _ = (float(v) for v in _derivatives(F, float(xv)))
  eps = float(jnp.finfo(dtype).eps)
  assert y == pytest.approx(want_y, rel=2 * eps, abs=float(jnp.finfo(dtype).tiny))
  assert d == pytest.approx(want_d, rel=2 * eps, abs=float(jnp.finfo(dtype).tiny))
