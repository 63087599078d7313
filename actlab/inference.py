"""Inference for few seeds: what a paired comparison of n runs can and cannot say.

Everything here is scipy.stats underneath; this module fixes the protocol:

- `sign_flip_test`: the exact paired permutation test (all 2^n sign patterns
  of the differences for n <= 20; Monte Carlo beyond, with its standard error).
  It assumes only that, under the null, a difference is as likely to be
  positive as negative; its smallest two-sided p is 2 / 2^n (0.0625 at n = 5).
- `paired_bca`: the BCa bootstrap interval of the mean paired difference.
- `tost`: two one-sided paired t-tests against a declared margin ±δ, so that
  "no significant difference" becomes "equivalent within ±δ" or "inconclusive".
- `power`, `minimal_detectable_effect`, `seeds_needed`: the paired t-test's
  power from the noncentral t (`scipy.stats.nct`), at the level the family
  imposes (Holm's first step, α/m: the most conservative).
- `leaves_chance`: for outcomes that are bimodal (a run learns or stays at
  chance), the fraction of seeds that leave chance, with its exact
  (Clopper-Pearson) binomial interval.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

import numpy as np
from scipy import optimize
from scipy import stats as sps

ALPHA = 0.05
POWER = 0.8
EQUIVALENCE_MARGIN = 0.01  # one accuracy point
MAX_EXACT_N = 20  # 2^20 sign patterns
MONTE_CARLO_RESAMPLES = 200_000


def _differences(d: Sequence[float] | np.ndarray, what: str) -> np.ndarray:
  x = np.asarray(d, dtype=np.float64).ravel()
  if x.size < 2 or not np.all(np.isfinite(x)):
    raise ValueError(
      f"{what} needs >= 2 finite values, got {x.tolist()}"
      " (drop non-finite runs; rerun the sweep with --seeds=5 or more)"
    )
  return x


@dataclasses.dataclass(frozen=True)
class SignFlip:
  """Two-sided sign-flip permutation test of mean(d) = 0."""

  pvalue: float
  exact: bool  # all 2^n patterns enumerated
  patterns: int  # how many sign patterns were used
  standard_error: float  # Monte Carlo error of pvalue; 0 when exact

  @property
  def smallest_possible(self) -> float:
    """The smallest two-sided p this design can give (exact test): 2 / 2^n."""
    return 2.0 / 2 ** round(math.log2(self.patterns)) if self.exact else 0.0


# Up to this n, the exact test is scipy's own enumeration; above it (to
# MAX_EXACT_N), `_exact_sign_flip_p` computes the same p-value: scipy builds
# the 2^n patterns in Python (about 10 s per test at n = 20), the halves
# below take milliseconds. tests/test_inference.py checks the two agree.
_SCIPY_EXACT_UP_TO = 12


def _exact_sign_flip_p(x: np.ndarray) -> float:
  """Two-sided exact sign-flip p of mean(x) = 0, as
  `scipy.stats.permutation_test(..., permutation_type="samples",
  n_resamples=inf)` defines it (its tolerance for ties included).

  Every pattern's mean is a sum over the first half of x plus one over the
  second, so the 2^n means are the outer sum of two lists of 2^(n/2).
  """
  n = x.size

  def signed_sums(v: np.ndarray) -> np.ndarray:
    bits = (np.arange(2**v.size)[:, None] >> np.arange(v.size)) & 1
    return (1 - 2 * bits) @ v

  half = n // 2
  null = (signed_sums(x[:half])[:, None] + signed_sums(x[half:])[None, :]).ravel() / n
  observed = x.mean()
  gamma = abs(np.finfo(np.float64).eps * 100 * observed)
  less = np.count_nonzero(null <= observed + gamma) / null.size
  greater = np.count_nonzero(null >= observed - gamma) / null.size
  return float(np.clip(2 * min(less, greater), 0.0, 1.0))


def sign_flip_test(
  d: Sequence[float] | np.ndarray,
  max_exact_n: int = MAX_EXACT_N,
  n_resamples: int = MONTE_CARLO_RESAMPLES,
  seed: int = 0,
) -> SignFlip:
  """Paired permutation test on the differences `d` (`scipy.stats.permutation_test`).

  Up to `max_exact_n` differences every sign pattern is enumerated; beyond,
  `n_resamples` random patterns, and the p-value's Monte Carlo standard error
  sqrt(p (1 - p) / n_resamples) is returned with it.
  """
  x = _differences(d, "sign_flip_test")
  exact = x.size <= max_exact_n
  if exact and x.size > _SCIPY_EXACT_UP_TO:
    return SignFlip(_exact_sign_flip_p(x), True, 2**x.size, 0.0)
  res = sps.permutation_test(
    (x,),
    np.mean,
    permutation_type="samples",
    vectorized=True,
    n_resamples=np.inf if exact else n_resamples,
    alternative="two-sided",
    rng=seed,
  )
  p = float(res.pvalue)
  patterns = 2**x.size if exact else n_resamples
  se = 0.0 if exact else math.sqrt(p * (1 - p) / n_resamples)
  return SignFlip(p, exact, patterns, se)


def bootstrap_ci(
  values: Sequence[float] | np.ndarray,
  statistic: Callable[[np.ndarray], float] = np.mean,
  confidence: float = 0.95,
  n_resamples: int = 9999,
  seed: int = 0,
) -> tuple[float, float]:
  """BCa bootstrap interval (`scipy.stats.bootstrap`) of `statistic`.

  Constant data gives the point interval; where BCa is undefined (almost
  constant data) the percentile interval is used. With few seeds the
  bootstrap distribution is coarse (5 values have 126 distinct resamples):
  read it next to the t-interval, not instead of it. Fewer than 3 values
  give (nan, nan).
  """
  x = _differences(values, "bootstrap_ci")
  if x.size < 3:  # 2 values have 3 distinct resamples: no interval to speak of
    return math.nan, math.nan
  if np.all(x == x[0]):
    return float(x[0]), float(x[0])
  kw = dict(confidence_level=confidence, n_resamples=n_resamples, rng=seed)
  with np.errstate(invalid="ignore", divide="ignore"):
    ci = sps.bootstrap((x,), statistic, method="BCa", **kw).confidence_interval
    if not (np.isfinite(ci.low) and np.isfinite(ci.high)):
      ci = sps.bootstrap((x,), statistic, method="percentile", **kw).confidence_interval
  return float(ci.low), float(ci.high)


def paired_bca(d: Sequence[float] | np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
  """The BCa interval of the mean paired difference."""
  return bootstrap_ci(d, np.mean, confidence)


@dataclasses.dataclass(frozen=True)
class Equivalence:
  """TOST: H0 |mean(d)| >= margin, rejected when both one-sided tests reject."""

  margin: float
  p_lower: float  # H0: mean <= -margin, one-sided 'greater'
  p_upper: float  # H0: mean >= +margin, one-sided 'less'

  @property
  def pvalue(self) -> float:
    return max(self.p_lower, self.p_upper)

  def equivalent(self, alpha: float = ALPHA) -> bool:
    return self.pvalue < alpha


def tost(d: Sequence[float] | np.ndarray, margin: float = EQUIVALENCE_MARGIN) -> Equivalence:
  """Two one-sided paired t-tests (`scipy.stats.ttest_1samp`) at ±`margin`.

  Equivalent at level α exactly when the (1 - 2α) t-interval of the mean
  difference lies inside (-margin, +margin).
  """
  if not margin > 0:
    raise ValueError(f"the equivalence margin must be > 0, got {margin}")
  x = _differences(d, "tost")
  if np.std(x, ddof=1) == 0:  # no spread: the mean is known exactly
    inside = abs(float(x.mean())) < margin
    p = 0.0 if inside else 1.0
    return Equivalence(margin, p, p)
  lower = sps.ttest_1samp(x, -margin, alternative="greater").pvalue
  upper = sps.ttest_1samp(x, margin, alternative="less").pvalue
  return Equivalence(margin, float(lower), float(upper))


def power(effect: float, sd: float, n: int, alpha: float = ALPHA) -> float:
  """Power of the two-sided paired t-test at level `alpha` for a true mean
  difference `effect`, SD of differences `sd`, `n` pairs (noncentral t)."""
  if n < 2 or not sd > 0:
    raise ValueError(f"power needs n >= 2 pairs and sd > 0, got n={n}, sd={sd}")
  df = n - 1
  t_crit = sps.t.ppf(1 - alpha / 2, df)
  nc = effect / sd * math.sqrt(n)
  nc = abs(nc)  # symmetric in the sign of the effect
  near = float(sps.nct.sf(t_crit, df, nc))
  far = float(sps.nct.cdf(-t_crit, df, nc))  # rejecting on the wrong side
  # scipy's nct gives NaN far in a tail; there the far side is below 1e-15
  # and, for large df, t is normal.
  if not math.isfinite(near):
    near = float(sps.norm.sf(t_crit - nc))
  if not math.isfinite(far):
    far = 0.0
  return near + far


def minimal_detectable_effect(
  sd: float, n: int, alpha: float = ALPHA, target: float = POWER
) -> float:
  """The smallest true mean difference the paired t-test detects with
  probability `target` (80%) at level `alpha`, for `n` pairs with SD `sd`."""
  if n < 2 or not sd > 0:
    return math.nan
  f = lambda effect: power(effect, sd, n, alpha) - target
  hi = sd
  while f(hi) < 0:
    hi *= 2
  return float(optimize.brentq(f, 0.0, hi, xtol=1e-12 * sd))


def seeds_needed(
  effect: float, sd: float, alpha: float = ALPHA, target: float = POWER, most: int = 100_000
) -> int:
  """The fewest pairs (seeds) at which the paired t-test reaches `target`
  power for a true difference `effect` given the SD of differences `sd`."""
  if not (effect != 0 and sd > 0):
    raise ValueError(f"seeds_needed needs effect != 0 and sd > 0, got {effect}, {sd}")
  if power(effect, sd, most, alpha) < target:
    return most + 1
  lo, hi = 2, most  # power grows with n: bisect on the first n that reaches target
  if power(effect, sd, lo, alpha) >= target:
    return lo
  while hi - lo > 1:
    mid = (lo + hi) // 2
    lo, hi = (lo, mid) if power(effect, sd, mid, alpha) >= target else (mid, hi)
  return hi


@dataclasses.dataclass(frozen=True)
class Proportion:
  """k of n seeds, with an exact binomial (Clopper-Pearson) interval."""

  k: int
  n: int
  low: float
  high: float

  @property
  def fraction(self) -> float:
    return self.k / self.n


def proportion(k: int, n: int, confidence: float = 0.95) -> Proportion:
  """`k` successes of `n`, with `scipy.stats.binomtest`'s exact interval."""
  if n < 1 or not 0 <= k <= n:
    raise ValueError(f"a proportion needs 0 <= k <= n and n >= 1, got k={k}, n={n}")
  ci = sps.binomtest(k, n).proportion_ci(confidence, method="exact")
  return Proportion(k, n, float(ci.low), float(ci.high))


def leaves_chance(
  accuracies: Sequence[float], num_classes: int = 10, margin: float = 0.05
) -> Proportion:
  """How many runs end above chance (1/num_classes) by more than `margin`.

  For bimodal outcomes (sigmoid in LeNet5: a seed learns or stays at 0.10),
  where a mean and a t-interval describe no run that happened.
  """
  acc = np.asarray(accuracies, dtype=np.float64)
  return proportion(int(np.sum(acc > 1.0 / num_classes + margin)), acc.size)


def bimodal_at_chance(
  accuracies: Sequence[float], num_classes: int = 10, margin: float = 0.05
) -> bool:
  """Some runs stay at chance and some leave it."""
  p = leaves_chance(accuracies, num_classes, margin)
  return 0 < p.k < p.n


def holm(p_values: Sequence[float]) -> np.ndarray:
  """Holm step-down adjusted p-values; NaNs stay NaN and do not count in m.

  Sorted ascending, p_(i) becomes max_{j<=i} min(1, (m - j + 1) p_(j)).
  """
  p = np.asarray(p_values, dtype=np.float64)
  out = np.full(p.shape, np.nan)
  idx = np.flatnonzero(np.isfinite(p))
  order = idx[np.argsort(p[idx], kind="stable")]
  m = order.size
  adjusted = np.minimum(1.0, (m - np.arange(m)) * p[order])
  out[order] = np.maximum.accumulate(adjusted)
  return out


def verdict(
  holm_p: float, equivalence_p: float, margin: float, mean_diff: float, alpha: float = ALPHA
) -> str:
  """One phrase for a paired comparison: different (by the family's Holm p),
  equivalent within ±margin (TOST), or inconclusive at this power."""
  points = f"{100 * margin:g} point{'s' if margin != 0.01 else ''}"
  if math.isfinite(holm_p) and holm_p < alpha:
    return "higher" if mean_diff > 0 else "lower"
  if math.isfinite(equivalence_p) and equivalence_p < alpha:
    return f"equivalent within ±{points}"
  return "inconclusive"
