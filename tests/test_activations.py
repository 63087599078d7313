"""Activations: values, analytic derivatives against autodiff, kinks, facts, specs."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from actlab import activations

NAMES = activations.names()
# Every entry with non-default parameters too, so parameter plumbing is tested.
SPECS = NAMES + [
    "leaky_relu(negative_slope=0.2)",
    "elu(alpha=0.5)",
    "elu(alpha=2.0)",
    "celu(alpha=0.5)",
    "gelu(approximate=True)",
    "squareplus(b=1.0)",
    "hard_shrink(threshold=1.5)",
    "soft_shrink(threshold=1.0)",
    "threshold(threshold=0.1, value=0.0)",
    "threshold(threshold=-0.5, value=-0.5)",
    "penalized_tanh(a=0.5)",
    "isru(alpha=2.0)",
    "isrlu(alpha=0.5)",
    "snake(a=2.0)",
    "sine(w0=2.0)",
]
GRID = np.concatenate([
    -np.logspace(-3, 4, 60), [0.0], np.logspace(-3, 4, 60), np.linspace(-6, 6, 241)
])


def _away_from_kinks(spec, x, eps=1e-2):
  ks = np.array(list(activations.kinks(spec)) or [np.inf])
  return x[np.min(np.abs(x[:, None] - ks[None, :]), axis=1) > eps]


def _bound(spec):
  name, kw = activations.parse_spec(spec)
  e = activations.entry(name)
  return e, e.bind(**kw)


def test_the_catalogue_has_at_least_forty_entries():
  assert len(NAMES) >= 40  # elementwise alone; aliases are not counted
  everything = activations.names(kind="all")
  assert {"glu", "prelu", "swish_beta", "maxout", "rrelu"} <= set(everything)
  for alias in ("swish", "linear", "hard_swish", "softsign", "logsigmoid"):
    assert alias in activations.names(include_aliases=True)
    assert alias not in NAMES


@pytest.mark.parametrize("spec", SPECS)
def test_analytic_derivative_matches_autodiff_of_formula(spec):
  e, params = _bound(spec)
  with jax.enable_x64(True), jax.disable_jit():
    x = jnp.asarray(_away_from_kinks(spec, GRID), jnp.float64)
    autodiff = jax.vmap(jax.grad(lambda v: e.fn(v, **params)))(x)
    analytic = activations.derivative(spec)(x)
  # Autodiff of a formula may round to 0 in the tails where the analytic form
  # keeps the true tiny value, hence the absolute floor.
  np.testing.assert_allclose(analytic, autodiff, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("spec", SPECS)
def test_grad_of_registered_function_is_the_analytic_derivative(spec):
  f = activations.get(spec)
  x = jnp.asarray(GRID, jnp.float32)
  with jax.disable_jit():  # eager: primitives compile once for all entries
    np.testing.assert_allclose(
        jax.vmap(jax.grad(f))(x), activations.derivative(spec)(x), rtol=1e-6, atol=0
    )


@pytest.mark.parametrize("spec", SPECS)
def test_check_grads_away_from_kinks(spec):
  smooth = activations.describe(spec).smoothness in ("C2", "Cinf")
  with jax.enable_x64(True), jax.disable_jit():
    x = jnp.asarray(_away_from_kinks(spec, np.linspace(-4, 4, 33), eps=0.05))
    # A C1 function's f'' may jump (soft_sign at 0): a smaller step keeps the
    # finite differences across such a point within tolerance.
    check_grads(
        activations.get(spec), (x,), order=2 if smooth else 1, modes=("fwd", "rev"),
        eps=1e-4 if smooth else 1e-6,
    )


@pytest.mark.parametrize("spec", SPECS)
def test_jit_and_eager_agree(spec):
  f = activations.get(spec)
  df = jax.vmap(jax.grad(f))
  x = jnp.asarray(np.concatenate([GRID, [-np.inf, np.inf, np.nan]]), jnp.float32)
  y, d = jax.jit(lambda v: (f(v), df(v)))(x)
  with jax.disable_jit():
    ey, ed, ed2 = f(x), df(x), jax.vmap(jax.grad(jax.grad(f)))(x)
  # XLA may fuse x**3 or a*b+c into one rounding: allow a few ulp of the
  # result, of x where the result is ill-conditioned (near zeros), and of the
  # terms, whose size is about max(1, |x|): the float32 forms that follow
  # jax.nn cancel in a tail (x + sqrt(x^2 + b), 1 + tanh(u)), where one ulp
  # more or less in a term is many in the result. float64 precision, tails
  # included, is held to mpmath by the jitted function in
  # test_activations_numerics.py.
  eps = np.finfo(np.float32).eps
  x = np.nan_to_num(np.asarray(x, np.float64), nan=0.0, posinf=0.0, neginf=0.0)
  with np.errstate(invalid="ignore"):
    for a, b, slope in ((y, ey, ed), (d, ed, ed2)):
      a, b, slope = (np.asarray(v, np.float64) for v in (a, b, slope))
      tol = 4 * eps * (np.abs(b) + np.abs(x * slope) + 4 * np.maximum(1, np.abs(x)))
      ok = (a == b) | (np.isnan(a) & np.isnan(b)) | (np.abs(a - b) <= tol)
      assert ok.all(), (x[~ok][:5], a[~ok][:5], b[~ok][:5])


@pytest.mark.parametrize("spec", [s for s in SPECS if activations.kinks(s)])
def test_documented_kink_derivatives_hold(spec):
  f = activations.get(spec)
  with jax.disable_jit():
    for x, d in activations.kinks(spec).items():
      assert float(jax.grad(f)(jnp.float32(x))) == pytest.approx(d, rel=1e-6)
      with jax.enable_x64(True):
        assert float(jax.grad(f)(jnp.float64(x))) == pytest.approx(d, rel=1e-12)


@pytest.mark.parametrize(
    "spec, kinks",
    [
        ("relu", {0.0: 0.0}),
        ("relu6", {0.0: 0.0, 6.0: 0.0}),
        ("leaky_relu", {0.0: 1.0}),
        ("leaky_relu(negative_slope=0.2)", {0.0: 1.0}),
        ("elu(alpha=0.5)", {0.0: 0.5}),
        ("elu", {}),
        ("hard_sigmoid", {-3.0: 0.0, 3.0: 0.0}),
        ("hard_silu", {-3.0: 0.0, 3.0: 1.0}),
        ("hard_tanh", {-1.0: 1.0, 1.0: 1.0}),
        ("threshold(threshold=0.1, value=0.0)", {0.1: 0.0}),
        ("sigmoid", {}),
        ("sparse_plus", {}),
    ],
)
def test_kinks_are_the_frameworks_conventions(spec, kinks):
  assert activations.kinks(spec) == kinks


# --- facts -------------------------------------------------------------------

# Dense in the middle, log-spaced tails out to 1e4, and the limits.
DENSE = np.unique(np.concatenate([
    np.linspace(-20, 20, 40001), -np.logspace(-6, 4, 2001), np.logspace(-6, 4, 2001)
]))


@pytest.fixture(scope="module")
def dense_values():
  cache = {}

  def values(spec):
    if spec not in cache:
      f, d = activations.get(spec), activations.derivative(spec)
      with jax.enable_x64(True), jax.disable_jit():
        x = jnp.asarray(DENSE, jnp.float64)
        lim = jnp.array([-np.inf, np.inf])
        cache[spec] = tuple(
            np.asarray(a) for a in (f(x), d(x), f(lim), jax.vmap(jax.grad(f))(lim))
        )
    return cache[spec]

  return values


@pytest.mark.parametrize("spec", SPECS)
def test_range_claim_holds(spec, dense_values):
  lo, hi = activations.describe(spec).range
  y, _, y_inf, _ = dense_values(spec)
  tol = lambda b: 1e-12 * max(1.0, abs(b))  # noqa: E731
  assert y.min() >= lo - tol(lo) and y.max() <= hi + tol(hi)
  seen = np.concatenate([y, y_inf[~np.isnan(y_inf)]])
  # The bounds are tight: approached on the grid or at +-inf.
  assert seen.min() <= (lo + 1e-6 * max(1.0, abs(lo)) if np.isfinite(lo) else -1e3)
  assert seen.max() >= (hi - 1e-6 * max(1.0, abs(hi)) if np.isfinite(hi) else 1e3)


@pytest.mark.parametrize("spec", SPECS)
def test_monotonic_claim_holds(spec, dense_values):
  y, dy, _, _ = dense_values(spec)
  y = y[np.isfinite(y)]  # exponential overflows at the right end
  steps = np.diff(y)
  if activations.describe(spec).monotonic:
    assert steps.min() >= -1e-12 * max(1.0, np.abs(y).max())
    assert dy.min() >= -1e-12
  else:
    assert steps.min() < -1e-9


@pytest.mark.parametrize("spec", SPECS)
def test_max_slope_claim_holds(spec, dense_values):
  facts = activations.describe(spec)
  _, dy, _, dy_inf = dense_values(spec)
  top = np.abs(dy).max()
  if math.isinf(facts.max_slope):
    assert top > 1e3 or np.isinf(dy_inf).any()
    return
  assert top <= facts.max_slope * (1 + 1e-9) + 1e-12
  at = facts.max_slope_at
  if math.isinf(at):
    reached = abs(dy_inf[int(at > 0)])
  else:
    # A kink's one-sided limit counts: look just beside it too.
    d = activations.derivative(spec)
    with jax.enable_x64(True), jax.disable_jit():
      reached = np.abs(d(jnp.array([at - 1e-7, at, at + 1e-7]))).max()
  assert reached >= facts.max_slope * (1 - 1e-6)


@pytest.mark.parametrize("spec", SPECS)
def test_zero_centred_and_saturation_claims_hold(spec, dense_values):
  facts = activations.describe(spec)
  y, dy, _, dy_inf = dense_values(spec)
  with jax.disable_jit():
    f0 = float(activations.get(spec)(0.0))
  assert (f0 == 0 and y.min() < 0 < y.max()) == facts.zero_centred
  far = np.abs(dy[[0, -1]])  # f' at -1e4 and 1e4
  flat = (far < 1e-6) & (np.abs(dy_inf) == 0)
  expected = {"none": [False, False], "left": [True, False],
              "right": [False, True], "both": [True, True]}[facts.saturates]
  assert flat.tolist() == expected


@pytest.mark.parametrize("name", activations.names(kind="all"))
def test_every_entry_is_described(name):
  d = activations.describe(name)
  assert d.name == name and d.smoothness in ("discontinuous", "C0", "C1", "C2", "Cinf")
  assert d.learnable == (d.kind == "module")
  assert d.kinks == activations.kinks(name)


# --- the tutorial's numbers ----------------------------------------------------


def test_tutorial_values_at_minus_one_zero_one():
  x = jnp.array([-1.0, 0.0, 1.0], jnp.float32)
  np.testing.assert_allclose(
      activations.get("sigmoid")(x), [0.26894143, 0.5, 0.7310586], rtol=1e-6
  )
  np.testing.assert_allclose(
      activations.get("tanh")(x), [-0.7615942, 0.0, 0.7615942], rtol=1e-6
  )
  np.testing.assert_array_equal(activations.get("relu")(x), [0.0, 0.0, 1.0])


def test_tutorial_derivative_bounds():
  with jax.enable_x64(True):
    x = jnp.linspace(-20, 20, 400001, dtype=jnp.float64)
    ds = np.asarray(activations.derivative("sigmoid")(x))
    dt = np.asarray(activations.derivative("tanh")(x))
    at_zero = [float(activations.derivative(n)(0.0)) for n in ("sigmoid", "tanh")]
  assert ds.max() == pytest.approx(0.25, abs=1e-12) and ds.max() <= 0.25
  assert dt.max() == pytest.approx(1.0, abs=1e-12) and dt.max() <= 1.0
  assert at_zero == [0.25, 1.0]  # the maxima, at 0
  assert ds[0] < 1e-8 and dt[0] < 1e-16  # both saturate


def test_derivatives_keep_precision_in_the_tails():
  with jax.enable_x64(True):
    x = jnp.array([-40.0, 40.0], jnp.float64)
    np.testing.assert_allclose(
        activations.derivative("sigmoid")(x), np.exp(-40) / (1 + np.exp(-40)) ** 2,
        rtol=1e-15,
    )
    np.testing.assert_allclose(
        activations.derivative("tanh")(x), 1 / np.cosh(40.0) ** 2, rtol=1e-15
    )
    # jax.nn.elu's gradient is 0.0 here.
    assert float(jax.grad(activations.get("elu"))(-40.0)) == pytest.approx(
        np.exp(-40), rel=1e-15
    )


# --- specs ---------------------------------------------------------------------


def test_spec_with_parameters():
  f = activations.get("leaky_relu(negative_slope=0.2)")
  np.testing.assert_allclose(f(jnp.array([-1.0, 2.0])), [-0.2, 2.0])
  assert activations.get("leaky_relu(negative_slope=0.2)") is f  # cached
  assert activations.get("swish") is activations.get("silu")
  assert activations.canonical("elu") == "elu(alpha=1.0)"
  assert activations.canonical("prelu(mode='shared')") == (
      "prelu(mode='shared', init_slope=0.25)"
  )
  g = activations.get("threshold(threshold=0.1, value=0.0)")
  np.testing.assert_allclose(g(jnp.array([0.05, 0.2])), [0.0, 0.2])


def test_pure_activations_stay_plain_jitted_functions():
  assert float(jax.grad(activations.get("relu"))(1.5)) == 1.0
  assert not activations.is_module(activations.get("relu"))
  assert activations.width_multiplier(activations.get("relu")) == 1
  assert activations.width_multiplier(activations.get("glu")) == 2
  assert activations.width_multiplier(activations.get("maxout(k=3)")) == 3
  assert activations.is_module(activations.get("prelu"))


@pytest.mark.parametrize(
    "spec, words",
    [
        ("rleu", ["Unknown activation 'rleu'", "Did you mean 'relu'", "leaky_relu"]),
        ("relu(", ["Malformed activation spec"]),
        ("elu(0.5)", ["must be named", "elu(alpha=0.5)"]),
        ("elu(alpha=__import__('os'))", ["must be a literal"]),
        ("elu(beta=1)", ["has no parameter 'beta'", "alpha"]),
        ("elu(alpha=-1)", ["out of range", "> 0"]),
        ("gelu(approximate=1)", ["True or False"]),
        ("relu + 1", ["Malformed"]),
        ("", ["non-empty string"]),
        ("prelu(mode='row')", ["'mode' must be one of", "'shared'", "'channel'"]),
        ("prelu(mode=1)", ["'mode' must be one of"]),
        ("maxout(k=2.5)", ["must be an integer"]),
        ("maxout(k=1)", ["out of range", ">= 2"]),
        ("rrelu(lower=0.5, upper=0.1)", ["lower <= upper"]),
        ("threshold(threshold='a')", ["must be a number"]),
    ],
)
def test_bad_specs_say_what_is_wrong(spec, words):
  with pytest.raises(ValueError) as err:
    activations.get(spec)
  for w in words:
    assert w in str(err.value)


def test_derivative_of_a_non_elementwise_entry_is_refused():
  for spec in ("glu", "prelu", "maxout"):
    with pytest.raises(ValueError, match="not an elementwise function"):
      activations.derivative(spec)
  with pytest.raises(ValueError, match="kind must be"):
    activations.names(kind="learnable")


def test_glu_halves_the_last_axis_and_its_jvp_is_autodiffs():
  f = activations.get("glu")
  x = jax.random.normal(jax.random.key(0), (3, 8))
  a, b = x[:, :4], x[:, 4:]
  np.testing.assert_allclose(f(x), a * jax.nn.sigmoid(b), rtol=1e-6)
  np.testing.assert_allclose(
      jax.grad(lambda v: f(v).sum())(x),
      jax.grad(lambda v: jax.nn.glu(v).sum())(x), rtol=1e-6, atol=1e-7,
  )
  with jax.enable_x64(True), jax.disable_jit():
    check_grads(f, (jnp.asarray(x, jnp.float64),), order=2, modes=("fwd", "rev"))
  with pytest.raises(ValueError, match="even size"):
    f(jnp.ones((2, 3)))
