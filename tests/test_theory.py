"""actlab.theory: known cases from the papers, closed forms, refusals, born dead."""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import optimize, special, stats

from actlab import models, theory
from actlab.theory import gaussian


def test_he_lecun_and_tanh_criticality_are_special_cases():
  # He et al. 2015: relu needs sw2 = 2; a linear network 1; tanh 1 at sb2 = 0
  # (Poole et al. 2016, Schoenholz et al. 2017: the critical line starts there).
  assert theory.critical_weight_var("relu") == pytest.approx(2.0, rel=1e-9)
  assert theory.critical_weight_var("identity") == pytest.approx(1.0, rel=1e-9)
  assert theory.critical_weight_var("tanh") == pytest.approx(1.0, rel=1e-7)
  # leaky_relu(a): He et al.'s 2 / (1 + a^2).
  assert theory.critical_weight_var("leaky_relu(negative_slope=0.2)") == pytest.approx(
      2 / 1.04, rel=1e-9)


def test_selu_at_unit_weight_variance_has_klambauers_fixed_point():
  r = theory.signal_propagation("selu", weight_var=1.0, bias_var=0.0)
  assert r.fixed_point == "finite"
  assert r.q_star == pytest.approx(1.0, rel=1e-6)
  # lambda^2 (1/2 + alpha^2 e^2 Phi(-2)): slightly chaotic, as computed by hand.
  lam, alpha = 1.0507009873554805, 1.6732632423543772
  want = lam**2 * (0.5 + alpha**2 * math.exp(2) * stats.norm.cdf(-2))
  assert r.chi_1 == pytest.approx(want, rel=1e-9)
  assert r.phase == "chaotic"


def test_relu_at_he_keeps_every_length_and_is_critical():
  r = theory.signal_propagation("relu", 2.0, 0.0)
  assert (r.fixed_point, r.phase) == ("every", "critical")
  assert r.chi_1 == pytest.approx(1.0, rel=1e-12) and r.xi_c == math.inf


def _erf_q_star(sw2, sb2):
  # E[erf(u)^2] for u ~ N(0, q) is (2/pi) arcsin(2q / (1 + 2q)) (Williams 1997).
  return optimize.brentq(
      lambda q: sw2 * 2 / np.pi * np.arcsin(2 * q / (1 + 2 * q)) + sb2 - q, 1e-9, 1e3,
      xtol=1e-15)


def test_expectations_match_closed_forms_in_one_and_two_dimensions():
  # hard_tanh at q = 2 has kinks at +-1/sqrt(2), off the panels' uniform edges.
  act = theory.elementwise("hard_tanh")
  q, t = 2.0, 1 / math.sqrt(2.0)
  value, err = gaussian.expect(lambda z: act.f(math.sqrt(q) * z) ** 2,
                               [k / math.sqrt(q) for k in act.kinks])
  want = 2 * stats.norm.sf(t) + q * (2 * stats.norm.cdf(t) - 1 - 2 * t * stats.norm.pdf(t))
  assert abs(value[0] - want) <= 1e-12 * want and err[0] <= 1e-8
  # relu's arc-cosine kernel (Cho & Saul 2009): E[relu(x1) relu(x2)], corr c.
  relu = theory.elementwise("relu")
  for c in (-0.7, 0.0, 0.3, 0.999):
    value, err = gaussian.expect2(lambda a, b: relu.f(a) * relu.f(b), relu.kinks, c)
    th = math.acos(c)
    want = (math.sin(th) + (math.pi - th) * c) / (2 * math.pi)
    assert abs(value[0] - want) <= 1e-11 and err[0] <= 1e-8, c
  # erf's kernel, a smooth case: (2/pi) arcsin(2 q c / (1 + 2 q)).
  for c in (-0.5, 0.6):
    value, _ = gaussian.expect2(lambda a, b: special.erf(a) * special.erf(b), (), c)
    assert value[0] == pytest.approx(2 / np.pi * np.arcsin(2 * c / 3), rel=1e-11)


def test_quadrature_error_is_estimated_and_reported():
  # The estimate (n vs 2n nodes) must bound the real error for relu^2 at q = 3.
  r = theory.signal_propagation("relu", 1.0, 0.5)  # q* = 0.5 + q*/2 -> q* = 1
  assert r.q_star == pytest.approx(1.0, rel=1e-12)
  assert 0 <= r.quadrature_error <= 1e-8


def test_chaotic_phase_matches_erfs_closed_form():
  sw2, sb2 = 3.0, 0.05
  q = _erf_q_star(sw2, sb2)
  cmap = lambda c: (sw2 * 2 / np.pi * np.arcsin(2 * q * c / (1 + 2 * q)) + sb2) / q  # noqa: E731
  c_star = optimize.brentq(lambda c: cmap(c) - c, 0.0, 0.999, xtol=1e-15)
  r = theory.signal_propagation(jax.scipy.special.erf, sw2, sb2)
  assert r.q_star == pytest.approx(q, rel=1e-9)
  assert r.phase == "chaotic" and r.c_star == pytest.approx(c_star, rel=1e-8)
  # chi_c = d C / d c at c*: sw2 (4 / pi) / sqrt((1 + 2q)^2 - (2 q c)^2).
  chi_c = sw2 * 4 / np.pi / math.sqrt((1 + 2 * q) ** 2 - (2 * q * c_star) ** 2)
  assert r.chi_c == pytest.approx(chi_c, rel=1e-8)
  assert r.xi_c == pytest.approx(-1 / math.log(chi_c), rel=1e-7)


@pytest.mark.parametrize("spec, copy, point", [
    ("tanh", jnp.tanh, (2.5, 0.05)),
    ("relu", lambda x: jnp.maximum(x, 0.0), (1.5, 0.1)),
    ("softplus", lambda x: jnp.logaddexp(x, 0.0), (1.0, 0.2)),
])
def test_a_user_lambda_gives_the_catalogue_entrys_result(spec, copy, point):
  ours, theirs = (theory.signal_propagation(a, *point) for a in (spec, copy))
  for field in ("q_star", "chi_1", "length_slope", "c_star", "chi_c", "xi_q", "xi_c"):
    a, b = getattr(ours, field), getattr(theirs, field)
    assert a == pytest.approx(b, rel=1e-9, abs=1e-12), field
  assert (ours.phase, ours.fixed_point) == (theirs.phase, theirs.fixed_point)


def test_no_fixed_point_is_a_result_not_a_hang_or_nan():
  r = theory.signal_propagation("exponential", 1.0, 0.0)
  assert r.fixed_point == "infinite" and r.q_star == math.inf
  assert r.chi_1 is None and r.phase is None and "without bound" in r.message
  dead = theory.signal_propagation("tanh", 0.5, 0.0)
  assert (dead.fixed_point, dead.q_star, dead.phase) == ("zero", 0.0, "ordered")
  assert dead.chi_1 == pytest.approx(0.5, rel=1e-12)
  grows = theory.signal_propagation("relu", 3.0, 0.1)
  assert grows.fixed_point == "infinite" and grows.chi_1 == pytest.approx(1.5)
  with pytest.raises(theory.NoCriticalPoint, match=r"chi_1\(0.01\)"):
    theory.critical_weight_var("sigmoid", search=(0.01, 0.1))


@pytest.mark.parametrize("activation, match", [
    ("glu", "gated"),
    ("maxout", "not elementwise"),
    ("prelu", r"prelu\(mode='channel', init_slope=0.25\)"),
    (nn.PReLU, "flax Module"),
])
def test_activations_it_cannot_analyse_are_refused_with_the_reason(activation, match):
  with pytest.raises(ValueError, match=match):
    theory.signal_propagation(activation, 1.0, 0.0)


def test_variances_must_be_variances():
  for sw2, sb2 in ((-1.0, 0.0), (1.0, -0.1), (math.nan, 0.0), (0.0, 0.0)):
    with pytest.raises(ValueError, match="weight_var|bias_var"):
      theory.signal_propagation("relu", sw2, sb2)


def test_learnable_entry_with_given_values_is_its_function_at_init():
  r = theory.signal_propagation("prelu(init_slope=0.5)", 1.0, 0.1)
  same = theory.signal_propagation("leaky_relu(negative_slope=0.5)", 1.0, 0.1)
  assert r.chi_1 == pytest.approx(same.chi_1, rel=1e-9)
  assert r.q_star == pytest.approx(same.q_star, rel=1e-9)


def test_critical_init_is_a_kernel_init_for_actlab_and_flax_models():
  init = theory.critical_init("relu")
  kernel = init(jax.random.key(0), (512, 256))
  assert float(jnp.var(kernel)) == pytest.approx(2.0 / 512, rel=0.02)
  model = models.MLP(activation="relu", depth=2, width=512, kernel_init=init)
  shapes = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 256)))
  assert shapes["params"][models.layer_name(1)]["kernel"].shape == (512, 512)
  dense = nn.Dense(64, kernel_init=theory.critical_init("tanh"))
  kernel = dense.init(jax.random.key(1), jnp.zeros((1, 4096)))["params"]["kernel"]
  assert float(jnp.var(kernel)) == pytest.approx(1.0 / 4096, rel=0.02)


def test_born_dead_exact_case_lies_within_the_bounds():
  for width, depth in ((2, 10), (3, 20)):
    r = theory.born_dead_probability(width, depth, trials=2000, seed=width)
    low, high = r.bounds
    assert r.exact_check and low <= r.ci[1] and r.ci[0] <= high
  # Sampled inputs agree with the exact +-1 check where both apply.
  exact = theory.born_dead_probability(2, 10, trials=2000, seed=5)
  sampled = theory.born_dead_probability(2, 10, trials=2000, seed=6, input_dim=2, inputs=64)
  assert not sampled.exact_check and sampled.bounds is None
  assert abs(exact.probability - sampled.probability) < 0.1


def test_asymmetric_initialisation_keeps_narrow_deep_nets_alive():
  sym = theory.born_dead_probability(3, 20, trials=400, inputs=64, bias_std=0.1, seed=0)
  rai = theory.born_dead_probability(3, 20, trials=400, inputs=64, asymmetric=True, seed=0)
  assert rai.ci[1] < sym.ci[0], (rai, sym)


def test_a_jump_of_chi_1_across_one_is_not_called_critical():
  # From unit-variance inputs gelu's q* jumps from 0 (chi_1 = sw2 / 4) to a
  # finite value with chi_1 > 1: there is no weight variance with chi_1 = 1.
  with pytest.raises(theory.NoCriticalPoint, match="jumps across 1"):
    theory.critical_weight_var("gelu", search=(1.5, 4.0))


def test_born_dead_takes_other_activations_on_sampled_inputs():
  smooth = theory.born_dead_probability(2, 10, trials=200, inputs=16, activation="tanh")
  assert not smooth.exact_check and smooth.dead == 0
  relu6 = theory.born_dead_probability(2, 10, trials=200, inputs=16, activation="relu6")
  assert relu6.dead > 100  # as dead as relu: relu6 is relu near 0
