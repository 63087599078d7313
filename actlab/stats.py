"""Statistics over seeds: intervals, paired tests against a baseline, Holm.

Everything is computed by scipy.stats; this module decides what is compared
and how corner cases (few seeds, zero differences, unpaired seeds) are
handled, and says so in each result's `notes`.

The runs of a sweep are read from disk here too (`read_sweep`), because
*which number* a run contributes is part of the statistical protocol: the
test accuracy at the validation-selected epoch when the run has a "test"
record, otherwise (the tutorial protocol) the final epoch's eval accuracy.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats as sps

from actlab import config as config_lib
from actlab import inference

CONFIDENCE = 0.95

# ----------------------------------------------------------------------------
# One condition
# ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Summary:
  """Mean, sample SD (ddof=1) and t-interval of one condition over seeds."""

  n: int
  mean: float
  sd: float
  ci_low: float
  ci_high: float

  @property
  def half_width(self) -> float:
    return (self.ci_high - self.ci_low) / 2


def _values(values: Sequence[float] | np.ndarray, what: str) -> np.ndarray:
  x = np.asarray(values, dtype=np.float64).ravel()
  if not np.all(np.isfinite(x)):
    raise ValueError(f"{what}: non-finite values {x.tolist()}; drop those runs first")
  if x.size < 2:
    raise ValueError(
      f"{what}: {x.size} value(s); an interval over seeds needs n >= 2 "
      "(rerun the sweep with --seeds=5 or more)"
    )
  return x


def summarize(values: Sequence[float], confidence: float = CONFIDENCE) -> Summary:
  """Mean, SD and the t-interval of the mean (`scipy.stats.ttest_1samp`)."""
  x = _values(values, "summarize")
  sd = float(np.std(x, ddof=1))
  if sd == 0:  # scipy's interval is NaN for constant data; the mean is exact
    return Summary(x.size, float(x.mean()), 0.0, float(x.mean()), float(x.mean()))
  ci = sps.ttest_1samp(x, 0.0).confidence_interval(confidence)
  return Summary(x.size, float(x.mean()), sd, float(ci.low), float(ci.high))


def mean_band(
  values_SxT: np.ndarray, confidence: float = CONFIDENCE
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Per column: mean and t-interval over the non-NaN rows (seeds).

  Columns with fewer than two values get a NaN interval (no band is drawn).
  """
  x = np.asarray(values_SxT, dtype=np.float64)
  n_T = np.sum(np.isfinite(x), axis=0)
  with np.errstate(invalid="ignore", divide="ignore"):
    mean_T = np.nansum(x, axis=0) / n_T
    sq_T = np.nansum((x - mean_T) ** 2, axis=0)
    sem_T = np.sqrt(sq_T / (n_T - 1) / n_T)
    half_T = sps.t.ppf(0.5 + confidence / 2, np.maximum(n_T - 1, 1)) * sem_T
  half_T = np.where(n_T >= 2, half_T, np.nan)
  mean_T = np.where(n_T >= 1, mean_T, np.nan)
  return mean_T, mean_T - half_T, mean_T + half_T


bootstrap_ci = inference.bootstrap_ci


# ----------------------------------------------------------------------------
# Paired comparisons against a baseline
# ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Comparison:
  """Condition minus baseline, paired by seed."""

  condition: str
  baseline: str
  seeds: tuple[int, ...]
  mean_diff: float
  sd_diff: float
  ci_low: float
  ci_high: float
  t_statistic: float
  t_p: float
  wilcoxon_statistic: float
  wilcoxon_p: float
  d_z: float  # Cohen's d_z: mean difference / SD of the differences
  notes: tuple[str, ...] = ()
  t_p_holm: float = math.nan
  wilcoxon_p_holm: float = math.nan
  # Distribution-free and equivalence results (actlab.inference).
  permutation_p: float = math.nan  # sign-flip test; exact for n <= 20
  permutation_exact: bool = True
  permutation_se: float = 0.0  # Monte Carlo error (0 when exact)
  bca_low: float = math.nan  # BCa bootstrap interval of the mean difference
  bca_high: float = math.nan
  margin: float = inference.EQUIVALENCE_MARGIN
  tost_p: float = math.nan  # H0: |difference| >= margin
  # Set over the declared family: its size, and the smallest true difference
  # the paired t-test detects with 80% power at Holm's first level α/m.
  family_size: int = 0
  mde: float = math.nan

  @property
  def verdict(self) -> str:
    return inference.verdict(self.t_p_holm, self.tost_p, self.margin, self.mean_diff)

  @property
  def n(self) -> int:
    return len(self.seeds)


def match_seeds(
  condition: Mapping[int, float], baseline: Mapping[int, float], allow_unpaired: bool = False
) -> tuple[list[int], list[str]]:
  """The seeds both have, and a note on any dropped; unpaired is an error by default."""
  only_c = sorted(set(condition) - set(baseline))
  only_b = sorted(set(baseline) - set(condition))
  notes = []
  if only_c or only_b:
    what = f"seeds only in the condition: {only_c}; only in the baseline: {only_b}"
    if not allow_unpaired:
      raise ValueError(f"unpaired seeds ({what}); a paired test needs the same seeds on both sides")
    notes.append(f"unpaired seeds dropped ({what})")
  return sorted(set(condition) & set(baseline)), notes


def _wilcoxon(d: np.ndarray) -> tuple[float, float, list[str]]:
  """Two-sided signed-rank test on the differences, with notes on what was done."""
  notes = []
  zeros = int(np.sum(d == 0))
  if zeros == d.size:
    return math.nan, math.nan, ["all paired differences are 0: no signed-rank test"]
  if zeros or np.unique(np.abs(d)).size < d.size:
    # scipy's 'auto' then enumerates all sign flips (exact) for n <= 13.
    notes.append(
      f"{zeros} zero and tied differences: Pratt's method, permutation null distribution"
      if zeros
      else "tied differences: permutation null distribution"
    )
  nonzero = d.size - zeros
  if 2.0 / 2**nonzero > 0.05:
    notes.append(
      f"{nonzero} non-zero differences: the Wilcoxon test cannot reach p < 0.05"
      f" (smallest two-sided p is {2.0 / 2**nonzero:.3g})"
    )
  res = sps.wilcoxon(d, zero_method="pratt", alternative="two-sided")
  return float(res.statistic), float(res.pvalue), notes


def paired_comparison(
  condition: Mapping[int, float],
  baseline: Mapping[int, float],
  name: str = "condition",
  baseline_name: str = "baseline",
  confidence: float = CONFIDENCE,
  allow_unpaired: bool = False,
  margin: float = inference.EQUIVALENCE_MARGIN,
) -> Comparison:
  """Paired t-test (`ttest_rel`), Wilcoxon signed-rank, d_z, the exact
  sign-flip permutation test, the BCa interval and TOST at ±`margin`, by seed.

  `condition` and `baseline` map seed -> value. Differences are rounded to
  12 decimals so that float round-off does not break ties the signed-rank
  test should see (accuracies are multiples of 1/N_test).
  """
  seeds, notes = match_seeds(condition, baseline, allow_unpaired)
  if len(seeds) < 2:
    raise ValueError(
      f"{name} vs {baseline_name}: {len(seeds)} paired seed(s) {seeds}; a paired test needs >= 2"
    )
  a = _values([condition[s] for s in seeds], name)
  b = _values([baseline[s] for s in seeds], baseline_name)
  d = np.round(a - b, 12)
  mean, sd = float(d.mean()), float(np.std(d, ddof=1))
  t_stat = t_p = d_z = math.nan
  lo = hi = mean
  if sd == 0:
    notes.append("the differences are constant (SD 0): no t-test, d_z undefined")
  else:
    res = sps.ttest_rel(a, b)
    ci = res.confidence_interval(confidence)
    t_stat, t_p, d_z = float(res.statistic), float(res.pvalue), mean / sd
    lo, hi = float(ci.low), float(ci.high)
  w_stat, w_p, w_notes = _wilcoxon(d)
  flip = inference.sign_flip_test(d)
  bca = inference.paired_bca(d, confidence)
  equivalence = inference.tost(d, margin)
  return Comparison(
    condition=name,
    baseline=baseline_name,
    seeds=tuple(seeds),
    mean_diff=mean,
    sd_diff=sd,
    ci_low=lo,
    ci_high=hi,
    t_statistic=t_stat,
    t_p=t_p,
    wilcoxon_statistic=w_stat,
    wilcoxon_p=w_p,
    d_z=d_z,
    notes=tuple(notes + w_notes),
    permutation_p=flip.pvalue,
    permutation_exact=flip.exact,
    permutation_se=flip.standard_error,
    bca_low=bca[0],
    bca_high=bca[1],
    margin=margin,
    tost_p=equivalence.pvalue,
  )


holm = inference.holm


def compare_pairs(
  values: Mapping[str, Mapping[int, float]],
  pairs: Sequence[Sequence[str]],
  confidence: float = CONFIDENCE,
  allow_unpaired: bool = True,
  margin: float = inference.EQUIVALENCE_MARGIN,
) -> dict[str, Comparison]:
  """The declared family: each (condition, reference) pair, paired by seed,
  Holm-adjusted over the family, with each comparison's 80%-power MDE at
  Holm's first level α/m. Keyed by condition.

  `values` maps condition -> seed -> value. Pairs with fewer than two paired
  seeds are left out of the result (and of Holm's m).
  """
  out = {}
  for name, ref in pairs:
    for c in (name, ref):
      if c not in values:
        raise ValueError(f"{c!r} is not among the conditions {sorted(values)}")
    try:
      out[name] = paired_comparison(
        values[name], values[ref], name, ref, confidence, allow_unpaired, margin
      )
    except ValueError:
      continue
  t_holm = holm([c.t_p for c in out.values()])
  w_holm = holm([c.wilcoxon_p for c in out.values()])
  m = len(out)
  return {
    name: dataclasses.replace(
      c,
      t_p_holm=float(t),
      wilcoxon_p_holm=float(w),
      family_size=m,
      mde=inference.minimal_detectable_effect(c.sd_diff, c.n, inference.ALPHA / m),
    )
    for (name, c), t, w in zip(out.items(), t_holm, w_holm)
  }


def compare_to_baseline(
  values: Mapping[str, Mapping[int, float]],
  baseline: str,
  confidence: float = CONFIDENCE,
  allow_unpaired: bool = True,
  margin: float = inference.EQUIVALENCE_MARGIN,
) -> dict[str, Comparison]:
  """Every condition against `baseline`: `compare_pairs` with that family."""
  if baseline not in values:
    raise ValueError(f"baseline {baseline!r} is not among the conditions {sorted(values)}")
  pairs = [(c, baseline) for c in values if c != baseline]
  return compare_pairs(values, pairs, confidence, allow_unpaired, margin)


# ----------------------------------------------------------------------------
# Runs and sweeps on disk
# ----------------------------------------------------------------------------


def latest_records(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
  """One record per (split, step), the last one written (a resumed run repeats steps)."""
  latest = {(r["split"], r["step"]): r for r in records}
  return sorted(latest.values(), key=lambda r: (r["step"], r["split"]))


@dataclasses.dataclass
class Run:
  """One run of a sweep: its records and the number it contributes."""

  condition: str
  seed: int
  workdir: Path
  config: dict[str, Any] = dataclasses.field(default_factory=dict)
  records: list[dict[str, Any]] = dataclasses.field(default_factory=list)
  error: str = ""  # why the run is left out; empty when it is usable
  accuracy: float = math.nan  # the compared number
  source: str = ""  # "test" (validation-selected) or "final_eval" (tutorial protocol)
  val_accuracy: float = math.nan
  selected_epoch: int | None = None
  final_epoch: int | None = None
  warnings: list[str] = dataclasses.field(default_factory=list)  # e.g. a torn last line

  @property
  def ok(self) -> bool:
    return not self.error

  def split(self, name: str) -> list[dict[str, Any]]:
    return [r for r in self.records if r["split"] == name]

  def by_epoch(self, name: str) -> dict[int, dict[str, Any]]:
    return {r["epoch"]: r for r in self.split(name)}

  def field(self, path: str, default: Any = None) -> Any:
    """A field of the run's config by dotted path (`"model.activation"`)."""
    return config_lib.value_at(self.config, path, default)


def load_run(workdir: str | os.PathLike, condition: str = "", seed: int | None = None) -> Run:
  """Reads a run; a missing, corrupt or unfinished run comes back with `error` set."""
  from actlab import writers  # pylint: disable=g-import-not-at-top

  workdir = Path(workdir)
  run = Run(condition or workdir.name, 0 if seed is None else seed, workdir)
  try:
    if (workdir / "config.json").exists():
      run.config = config_lib.upgrade(json.loads((workdir / "config.json").read_text()))
    if seed is None:
      run.seed = int(run.config.get("seed", 0))
    if not (workdir / "metrics.jsonl").exists():
      run.error = "no metrics.jsonl"
      return run
    with warnings.catch_warnings(record=True) as caught:
      warnings.simplefilter("always")
      run.records = latest_records(writers.read_metrics(workdir))
    run.warnings = [str(w.message) for w in caught]
  except (OSError, ValueError, KeyError, TypeError) as e:
    run.error = f"unreadable: {type(e).__name__}: {e}"
    return run
  evals = run.by_epoch("eval")
  if not evals:
    skipped = f"; {len(run.warnings)} line(s) of metrics.jsonl not readable" if run.warnings else ""
    run.error = f"no eval record (unfinished or empty){skipped}"
    return run
  run.final_epoch = max(evals)
  planned = run.config.get("num_epochs")
  tests = run.split("test")
  if tests:
    test = tests[-1]
    run.accuracy, run.source = float(test["accuracy"]), "test"
    run.val_accuracy = float(test.get("eval_accuracy", math.nan))
    run.selected_epoch = test.get("selected_epoch")
  elif run.field("data.test_split"):
    run.error = f"unfinished: no test record yet (last eval epoch {run.final_epoch})"
  elif isinstance(planned, int) and run.final_epoch < planned:
    run.error = f"unfinished: last eval epoch {run.final_epoch} of {planned}"
  else:
    run.accuracy, run.source = float(evals[run.final_epoch]["accuracy"]), "final_eval"
    run.selected_epoch = run.final_epoch
  if run.ok and not math.isfinite(run.accuracy):
    run.error = f"non-finite accuracy {run.accuracy}"
  return run


@dataclasses.dataclass
class Sweep:
  """Conditions (in order) and their runs; `runs[c][seed]` is a Run."""

  root: Path
  conditions: list[str]
  runs: dict[str, dict[int, Run]]
  baseline: str | None
  config: str = ""
  fields: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
  family: list[list[str]] = dataclasses.field(default_factory=list)  # declared pairs
  design: dict[str, Any] = dataclasses.field(default_factory=dict)

  def declared_family(self) -> list[list[str]]:
    """The confirmatory pairs: sweep.json's family, else every condition
    against the baseline."""
    if self.family:
      return [list(p) for p in self.family]
    if self.baseline is None:
      return []
    return [[c, self.baseline] for c in self.conditions if c != self.baseline]

  def ok_runs(self, condition: str) -> dict[int, Run]:
    return {s: r for s, r in self.runs[condition].items() if r.ok}

  def bad_runs(self) -> list[Run]:
    return [r for c in self.conditions for r in self.runs[c].values() if not r.ok]

  def accuracies(self) -> dict[str, dict[int, float]]:
    return {c: {s: r.accuracy for s, r in self.ok_runs(c).items()} for c in self.conditions}


_SEED_DIR = re.compile(r"^seed_(\d+)$")


def _condition_runs(folder: Path, condition: str, seeds: Sequence[int] = ()) -> dict[int, Run]:
  """A condition folder: seed_<s>/ subfolders, or one run (old single-seed layout)."""
  found = {
    int(m.group(1)): p
    for p in sorted(folder.iterdir() if folder.is_dir() else [])
    if p.is_dir() and (m := _SEED_DIR.match(p.name))
  }
  if not found and (folder / "metrics.jsonl").exists():
    run = load_run(folder, condition)
    return {run.seed: run}
  runs = {s: load_run(p, condition, s) for s, p in found.items()}
  for s in seeds:
    if s not in runs:
      runs[s] = Run(condition, s, folder / f"seed_{s}", error="not started: no run folder")
  return dict(sorted(runs.items()))


def is_condition(path: Path) -> bool:
  """A run folder (metrics.jsonl) or a folder of seed_<s>/ runs."""
  return path.is_dir() and (
    (path / "metrics.jsonl").exists() or any(_SEED_DIR.match(p.name) for p in path.iterdir())
  )


def read_sweep(root: str | os.PathLike, baseline: str | None = None) -> Sweep:
  """Reads SWEEP/sweep.json (or the condition subfolders) and every run.

  The baseline is, in order: the `baseline` argument, sweep.json's
  "baseline", "relu" when there is such a condition, else none.
  """
  root = Path(root)
  spec_path = root / "sweep.json"
  if spec_path.exists():
    spec = json.loads(spec_path.read_text())
    conditions = [c["name"] for c in spec["conditions"]]
    fields = {c["name"]: config_lib.upgrade_fields(c.get("fields", {})) for c in spec["conditions"]}
    seeds, config = spec.get("seeds", []), spec.get("config", "")
    baseline = baseline or spec.get("baseline")
    family, design = spec.get("family", []), spec.get("design", {})
  else:
    conditions = [p.name for p in sorted(root.iterdir()) if is_condition(p)]
    fields, seeds, config, family, design = {}, [], "", [], {}
  if not conditions:
    raise ValueError(
      f"{root} holds no sweep: expected sweep.json or condition folders with seed_<s>/ runs"
    )
  runs = {c: _condition_runs(root / c, c, seeds) for c in conditions}
  return Sweep(
    root, conditions, runs, _baseline(conditions, baseline), config, fields, family, design
  )


def _baseline(conditions: Sequence[str], baseline: str | None) -> str | None:
  if baseline and baseline not in conditions:
    raise ValueError(f"baseline {baseline!r} is not among the conditions {list(conditions)}")
  return baseline or ("relu" if "relu" in conditions else None)


def sweep_from_workdirs(paths: Sequence[str | os.PathLike], baseline: str | None = None) -> Sweep:
  """Old layout: each path is one condition (a run, or a folder of seed_<s>/ runs)."""
  paths = [Path(p) for p in paths if is_condition(Path(p))]
  if not paths:
    raise ValueError("none of the given folders holds a metrics.jsonl or seed_<s>/ runs")
  conditions = list(dict.fromkeys(p.name for p in paths))
  runs = {p.name: _condition_runs(p, p.name) for p in paths}
  root = Path(os.path.commonpath([p.absolute() for p in paths]))
  return Sweep(root, conditions, runs, _baseline(conditions, baseline))
