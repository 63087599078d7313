"""Activations: values, analytic derivatives against autodiff, kinks, facts, specs."""

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads  # glu, which check() does not cover

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


def assert_passes(spec, checks, **kwargs):
  """`activations.check` on the named checks: every one runs and passes."""
  report = activations.check(spec, checks=checks, **kwargs)
  assert report.ok, str(report)
  skipped = [r.name for r in report.results if r.skipped]
  assert not skipped, f"{spec}: {skipped} did not run\n{report}"
  return report


def test_the_catalogue_has_at_least_forty_entries():
  assert len(NAMES) >= 40  # elementwise alone; aliases are not counted
  everything = activations.names(kind="all")
  assert {"glu", "prelu", "swish_beta", "maxout", "rrelu"} <= set(everything)
  for alias in ("swish", "linear", "hard_swish", "softsign", "logsigmoid"):
    assert alias in activations.names(include_aliases=True)
    assert alias not in NAMES


# The checks themselves live in actlab.activations.checks, so that users'
# activations get the same ones (activations.check); their docstrings say what
# each holds and with which tolerance.


@pytest.mark.parametrize("spec", SPECS)
def test_analytic_derivative_matches_autodiff_of_formula(spec):
  assert_passes(spec, ["derivative"])


@pytest.mark.parametrize("spec", SPECS)
def test_grad_of_registered_function_is_the_analytic_derivative(spec):
  assert_passes(spec, ["custom_jvp"])


@pytest.mark.parametrize("spec", SPECS)
def test_check_grads_away_from_kinks(spec):
  assert_passes(spec, ["check_grads"])


@pytest.mark.parametrize("spec", SPECS)
def test_elementwise_and_jit_and_eager_agree(spec):
  assert_passes(spec, ["elementwise", "jit"])


@pytest.mark.parametrize("spec", [s for s in SPECS if activations.kinks(s)])
def test_documented_kink_derivatives_hold(spec):
  assert_passes(spec, ["kinks"])


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


@pytest.mark.parametrize("spec", SPECS)
def test_stated_facts_hold(spec):
  # range, monotonic, max_slope, zero_centred, saturates: on a dense float64
  # grid (|x| <= 1e4) and at +-inf, all from one evaluation.
  assert_passes(spec, list(activations.checks.FACT_CHECKS))


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


# --- the library API: attributes, get, register, check, module specs ----------


@pytest.fixture
def own_registry(monkeypatch):
  """The registry as it is now, restored after the test."""
  from actlab.activations import registry

  for name in ("_REGISTRY", "_ALIASES", "_FROM_MODULES"):
    monkeypatch.setattr(registry, name, dict(getattr(registry, name)))


def test_every_entry_is_an_attribute_with_its_docstring():
  listed = dir(activations)
  for name in activations.names(include_aliases=True, kind="all"):
    attr = getattr(activations, name)
    assert name in listed and attr.__doc__, name
    e = activations.entry(name)
    if not e.params or e.kind == "module":
      assert attr is activations.get(name), name
  x = jnp.linspace(-3, 3, 13)
  np.testing.assert_array_equal(
      activations.elu(x, alpha=0.5), activations.get("elu(alpha=0.5)")(x))
  np.testing.assert_array_equal(activations.elu(x, 0.5), activations.elu(x, alpha=0.5))
  with pytest.raises(ValueError, match="out of range"):
    activations.elu(x, alpha=-1.0)
  with pytest.raises(TypeError):
    activations.elu(x, beta=1.0)
  assert str(inspect.signature(activations.elu)) == "(x, alpha=1.0)"
  assert activations.prelu(mode="shared").mode == "shared"
  with pytest.raises(AttributeError, match="Did you mean 'relu'"):
    activations.rleu  # noqa: B018


@pytest.mark.parametrize("name", ["relu", "hard_tanh", "identity", "abs", "sigmoid", "elu"])
def test_integer_inputs_follow_jax_nn(name):
  x = jnp.array([-3, -1, 0, 1, 7], jnp.int32)
  y = getattr(activations, name)(x)
  if name in ("relu", "hard_tanh", "identity"):
    reference = getattr(jax.nn, name)(x)
    assert y.dtype == reference.dtype == jnp.int32
    np.testing.assert_array_equal(y, reference)
  elif name == "abs":
    assert y.dtype == jnp.int32
  else:
    assert y.dtype == jnp.float32
    np.testing.assert_allclose(y, getattr(activations, name)(x.astype(jnp.float32)))


def test_get_passes_what_models_use_through():
  import flax.linen as nn

  fn = lambda v: v * jax.nn.sigmoid(v)  # noqa: E731
  prelu = activations.get("prelu")
  for obj in (jax.nn.gelu, fn, prelu, nn.PReLU()):
    assert activations.get(obj) is obj
  # A Module class becomes its factory: still a class partial for models,
  # and applied when called on an array inside a model.
  for cls in (nn.PReLU, activations.PReLU):
    factory = activations.get(cls)
    assert activations.is_module(factory) and factory.func is cls
    assert activations.get(factory) is factory
  with pytest.raises(ValueError, match="a callable or a flax Module class"):
    activations.get(3)


def test_register_refuses_a_wrong_derivative_with_a_report(own_registry):
  with pytest.raises(activations.CheckError) as err:
    activations.register(activations.Entry("square", lambda x: x * x, lambda x: x))
  report = err.value.report
  assert not report.ok and report["elementwise"].ok and not report["derivative"].ok
  worst = report.worst
  assert worst.value == worst.x and worst.expected == 2 * worst.x
  assert worst.error == abs(worst.x) and worst.error > worst.tolerance
  assert "worst at x=" in str(err.value) and "square" not in activations.names()


def test_register_override_and_names(own_registry):
  e = activations.Entry("cube_root", jnp.cbrt, lambda x: 1 / (3 * jnp.cbrt(x) ** 2),
                        kinks={0.0: np.inf}, aliases=("cbrt",))
  activations.register(e)
  assert activations.entry("cbrt") is e and activations.cbrt is activations.cube_root
  with pytest.raises(ValueError, match="override=True"):
    activations.register(e)
  doubled = activations.Entry("cube_root", lambda x: 2 * jnp.cbrt(x),
                              lambda x: 2 / (3 * jnp.cbrt(x) ** 2), kinks={0.0: np.inf})
  activations.register(doubled, override=True)
  assert float(activations.cube_root(8.0)) == 4.0 and "cbrt" not in activations.names(True)
  for name, words in [("swish", "taken by 'silu'"), ("my-act", "Python identifier"),
                      ("check", "would hide actlab.activations.check")]:
    with pytest.raises(ValueError, match=words):
      activations.register(activations.Entry(name, jnp.sin, jnp.cos), override=True)


def test_check_names_the_failing_claim_and_its_worst_point():
  wrong = activations.Facts((0.0, 1.0), True, "Cinf", False, 1.0, 0.0, "both")
  report = activations.check(jnp.tanh, lambda x: 1 - jnp.tanh(x) ** 2, facts=wrong,
                             checks=["range", "zero_centred", "derivative"])
  assert not report.ok and report["derivative"].ok
  assert not report["range"].ok and report["range"].worst.value < 0
  assert not report["zero_centred"].ok and "zero_centred=False" in str(report)
  softmax = activations.check(jax.nn.softmax, checks=["elementwise"])
  assert not softmax.ok and "each element alone" in str(softmax)
  with pytest.raises(ValueError, match="checks= takes names"):
    activations.check("relu", checks=["derivatives"])
  with pytest.raises(ValueError, match="covers elementwise activations"):
    activations.check("glu")


def _user_module(tmp_path, monkeypatch, source):
  """Writes an importable module with a name unique to this test."""
  name = f"user_acts_{tmp_path.name}"
  (tmp_path / f"{name}.py").write_text(source)
  monkeypatch.syspath_prepend(str(tmp_path))
  return name


def test_module_specs_resolve_and_explain(tmp_path, monkeypatch, own_registry):
  mod = _user_module(tmp_path, monkeypatch, """
import inspect

import jax
import jax.numpy as jnp
from actlab.activations import Entry, register

def bumpy(x, a=1.0):
  return x + a * jnp.sin(x)

def smooth_bump(x):
  return x + jnp.sin(x)

register(Entry("bumpy_entry", smooth_bump, lambda x: 1 + jnp.cos(x)))
UNREGISTERED = Entry("unregistered", jnp.sin, jnp.cos)
WRONG = Entry("wrong", jnp.sin, jnp.sin)

def normalised(x):
  return jax.nn.softmax(x)

def broken(x):
  return jnp.log(x)

NUMBER = 3
""")
  f = activations.get(f"{mod}:bumpy(a=0.5)")
  assert f.keywords == {"a": 0.5} and f is activations.get(f"{mod}:bumpy(a=0.5)")
  # The formula of an entry the module registered: that entry.
  assert activations.get(f"{mod}:smooth_bump") is activations.get("bumpy_entry")
  assert float(activations.get(f"{mod}:UNREGISTERED")(0.0)) == 0.0
  assert activations.canonical(f"{mod}:bumpy(a=0.5)") == f"{mod}:bumpy(a=0.5)"
  assert activations.parse_spec(f"{mod}:bumpy(a=2)") == (f"{mod}:bumpy", {"a": 2})
  for spec, err, words in [
      (f"{mod}:WRONG", activations.CheckError, ["derivative", "FAILED"]),
      (f"{mod}:normalised", activations.CheckError, ["each element alone"]),
      (f"{mod}:broken", activations.CheckError, ["not finite"]),
      (f"{mod}:NUMBER", ValueError, ["'int' object, not a callable activation"]),
      (f"{mod}:bumpi", ValueError, ["has no attribute 'bumpi'", "Did you mean 'bumpy'"]),
      ("no_such_module_x:f", ValueError, ["Cannot import", "PYTHONPATH"]),
      (f"{mod}:", ValueError, ["Malformed"]),
  ]:
    with pytest.raises(err) as e:
      activations.get(spec)
    for w in words:
      assert w in str(e.value), (spec, str(e.value))
  with pytest.raises(ValueError, match="list of module paths"):
    activations.import_modules(mod)
