"""actlab.inference against brute force and hand computation."""

import itertools
import math

import numpy as np
import pytest
from scipy import stats as sps

from actlab import inference


def brute_force_sign_flip(d):
  """Two-sided p over every sign pattern, counted by hand."""
  d = np.asarray(d, dtype=np.float64)
  observed = abs(d.mean())
  hits = 0
  patterns = list(itertools.product((1.0, -1.0), repeat=d.size))
  for signs in patterns:
    if abs(np.mean(d * np.array(signs))) >= observed - 1e-12:
      hits += 1
  return hits / len(patterns)


@pytest.mark.parametrize(
  "d",
  [
    [0.0123, 0.0081, 0.0154, 0.0032, 0.0201],  # all positive: the floor 2/32
    [0.011, -0.004, 0.019, 0.007, -0.002, 0.013],
    [-0.03, 0.01, 0.02, -0.01, 0.005, 0.0, 0.012, -0.004],  # a zero and mixed signs
    [0.0003, 0.0001, -0.0002, 0.0004, 0.0001, -0.0001, 0.0002, 0.0003, -0.0004, 0.0002],  # ties
  ],
)
def test_sign_flip_p_equals_brute_force_enumeration(d):
  res = inference.sign_flip_test(d)
  assert res.exact and res.patterns == 2 ** len(d) and res.standard_error == 0
  assert res.pvalue == pytest.approx(brute_force_sign_flip(d), abs=1e-12)


def test_sign_flip_beyond_exact_is_monte_carlo_with_its_error():
  d = np.random.default_rng(3).normal(0.002, 0.01, size=25)
  res = inference.sign_flip_test(d, n_resamples=20_000)
  assert not res.exact and res.patterns == 20_000
  assert res.standard_error == pytest.approx(math.sqrt(res.pvalue * (1 - res.pvalue) / 20_000))
  # The exact p (2^25 patterns is too many to list; 2^18 of them as a check on a prefix).
  exact_prefix = inference.sign_flip_test(d[:18])
  assert exact_prefix.exact
  # The same data, Monte Carlo vs its own enumeration at n = 18, agree within 4 SE.
  mc = inference.sign_flip_test(d[:18], max_exact_n=10, n_resamples=20_000)
  assert abs(mc.pvalue - exact_prefix.pvalue) < 4 * mc.standard_error + 1e-4


def test_tost_equals_hand_computation():
  d = np.array([0.002, -0.001, 0.004, 0.000, 0.003])
  n, mean = d.size, d.mean()  # mean 0.0016
  sd = math.sqrt(sum((x - mean) ** 2 for x in d) / (n - 1))
  se = sd / math.sqrt(n)
  t_lower, t_upper = (mean + 0.01) / se, (mean - 0.01) / se
  p_lower, p_upper = sps.t.sf(t_lower, n - 1), sps.t.cdf(t_upper, n - 1)
  res = inference.tost(d, margin=0.01)
  assert res.p_lower == pytest.approx(p_lower, rel=1e-10)
  assert res.p_upper == pytest.approx(p_upper, rel=1e-10)
  assert res.pvalue == pytest.approx(max(p_lower, p_upper))
  assert res.equivalent()  # |mean| + t * se well inside 0.01
  # The 90% t-interval inside ±margin is the same decision.
  half = sps.t.ppf(0.95, n - 1) * se
  assert -0.01 < mean - half and mean + half < 0.01
  # A difference near the margin is not equivalent.
  assert not inference.tost(d + 0.009, margin=0.01).equivalent()
  with pytest.raises(ValueError, match="margin"):
    inference.tost(d, margin=0.0)


def test_power_matches_simulated_t_tests():
  rng = np.random.default_rng(0)
  n, sd, effect, alpha = 6, 0.01, 0.012, 0.05
  d = rng.normal(effect, sd, size=(200_000, n))
  t = d.mean(1) / (d.std(1, ddof=1) / math.sqrt(n))
  simulated = np.mean(np.abs(t) > sps.t.ppf(1 - alpha / 2, n - 1))
  assert inference.power(effect, sd, n, alpha) == pytest.approx(simulated, abs=0.004)


def test_mde_reaches_80_percent_power_and_approaches_the_normal_formula():
  mde = inference.minimal_detectable_effect(0.0137, 5, 0.05 / 9)
  assert inference.power(mde, 0.0137, 5, 0.05 / 9) == pytest.approx(0.8, abs=1e-9)
  # Large n: (z_{1-α/2} + z_{0.8}) σ / √n (hand formula).
  n, sd = 4000, 0.01
  hand = (sps.norm.ppf(1 - 0.025) + sps.norm.ppf(0.8)) * sd / math.sqrt(n)
  assert inference.minimal_detectable_effect(sd, n) == pytest.approx(hand, rel=2e-3)


def test_seeds_needed_for_one_and_half_a_point():
  # Median SD of paired differences 0.0137 in the 3-epoch comparison, Holm level of 9.
  n1 = inference.seeds_needed(0.01, 0.0137, 0.05 / 9)
  assert n1 == 29
  assert inference.power(0.01, 0.0137, n1, 0.05 / 9) >= 0.8
  assert inference.power(0.01, 0.0137, n1 - 1, 0.05 / 9) < 0.8
  assert 95 <= inference.seeds_needed(0.005, 0.0137, 0.05 / 9) <= 110


def test_leaves_chance_counts_with_an_exact_interval():
  p = inference.leaves_chance([0.10, 0.11, 0.42, 0.10, 0.39])
  assert (p.k, p.n) == (2, 5)
  ci = sps.binomtest(2, 5).proportion_ci(method="exact")
  assert (p.low, p.high) == pytest.approx((ci.low, ci.high))
  assert inference.bimodal_at_chance([0.10, 0.11, 0.42, 0.10, 0.39])
  assert not inference.bimodal_at_chance([0.41, 0.42, 0.40])


def test_holm_by_hand():
  np.testing.assert_allclose(
    inference.holm([0.01, 0.04, 0.03, np.nan]), [0.03, 0.06, 0.06, np.nan], equal_nan=True
  )


def test_verdicts():
  assert inference.verdict(0.01, 0.5, 0.01, +0.02) == "higher"
  assert inference.verdict(0.2, 0.01, 0.01, 0.001) == "equivalent within ±1 point"
  assert inference.verdict(0.2, 0.3, 0.01, 0.004) == "inconclusive"


@pytest.mark.parametrize("n", [13, 14, 16])
def test_fast_exact_sign_flip_equals_scipys_enumeration(n):
  """Above 12 differences the exact p is computed by halves; it is the p
  scipy.stats.permutation_test gives over all 2^n patterns, ties included."""
  rng = np.random.default_rng(n)
  for d in (rng.normal(0.003, 0.01, n), np.round(rng.normal(0.0, 0.002, n), 3)):
    scipy_p = sps.permutation_test(
      (d,), np.mean, permutation_type="samples", vectorized=True, n_resamples=np.inf
    ).pvalue
    res = inference.sign_flip_test(d)
    assert res.exact and res.patterns == 2**n
    assert res.pvalue == scipy_p
  # And by hand, where the test allows the time for it.
  d = rng.normal(0.002, 0.01, 13)
  assert inference.sign_flip_test(d).pvalue == pytest.approx(brute_force_sign_flip(d), abs=1e-12)


def test_two_seeds_give_no_bootstrap_interval():
  # 2 values have 3 distinct resamples: an "interval" from them describes nothing.
  low, high = inference.bootstrap_ci([0.01, 0.03])
  assert math.isnan(low) and math.isnan(high)
  assert all(map(math.isfinite, inference.bootstrap_ci([0.01, 0.03, 0.02])))
