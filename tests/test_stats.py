"""actlab.stats against scipy on fixed data, Holm by hand, and a planted effect."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps

from actlab import stats

A = [0.551, 0.562, 0.548, 0.570, 0.559, 0.544]
B = [0.540, 0.549, 0.541, 0.552, 0.550, 0.539]


def test_summarize_equals_scipy_t_interval():
  s = stats.summarize(A)
  sem = np.std(A, ddof=1) / math.sqrt(len(A))
  half = sps.t.ppf(0.975, len(A) - 1) * sem
  assert s.n == 6
  assert s.mean == pytest.approx(np.mean(A), abs=1e-15)
  assert s.sd == pytest.approx(np.std(A, ddof=1), abs=1e-15)
  assert (s.ci_low, s.ci_high) == pytest.approx((np.mean(A) - half, np.mean(A) + half), abs=1e-12)
  # By hand: mean 0.555667, SD 0.0097297, t(0.975, 5 df) = 2.570582, half-width 0.010211.
  assert (s.ci_low, s.ci_high) == pytest.approx((0.545456, 0.565878), abs=1e-6)


def test_mean_band_matches_summarize_per_column_and_skips_single_values():
  x = np.array([A, B, [0.5] * 5 + [np.nan]]).T  # 6 seeds x 3 columns; last column 5 seeds
  x[1:, 2] = np.nan  # third column: one seed only
  mean_T, lo_T, hi_T = stats.mean_band(x)
  for col, values in enumerate((A, B)):
    s = stats.summarize(values)
    assert (mean_T[col], lo_T[col], hi_T[col]) == pytest.approx((s.mean, s.ci_low, s.ci_high))
  assert mean_T[2] == 0.5 and np.isnan(lo_T[2]) and np.isnan(hi_T[2])


def test_paired_comparison_equals_ttest_rel_and_wilcoxon():
  c = stats.paired_comparison(dict(enumerate(A)), dict(enumerate(B)), "a", "b")
  t = sps.ttest_rel(A, B)
  ci = t.confidence_interval(0.95)
  d = np.round(np.subtract(A, B), 12)
  w = sps.wilcoxon(d)
  assert (c.t_statistic, c.t_p) == pytest.approx((t.statistic, t.pvalue), rel=1e-12)
  assert (c.ci_low, c.ci_high) == pytest.approx((ci.low, ci.high), rel=1e-12)
  assert (c.wilcoxon_statistic, c.wilcoxon_p) == (w.statistic, w.pvalue)
  assert c.wilcoxon_p == pytest.approx(2 / 2**6)  # all six differences positive: exact p
  assert c.d_z == pytest.approx(np.mean(d) / np.std(d, ddof=1))
  assert c.n == 6 and c.seeds == tuple(range(6))


def test_wilcoxon_with_few_seeds_and_zero_differences_says_what_was_done():
  base = {s: 0.5 for s in range(5)}
  c = stats.paired_comparison({s: 0.5 + 0.01 * (s + 1) for s in range(5)}, base)
  assert c.wilcoxon_p == pytest.approx(0.0625)
  assert any("cannot reach p < 0.05" in n for n in c.notes)
  zero = stats.paired_comparison({0: 0.5, 1: 0.52, 2: 0.53, 3: 0.49, 4: 0.51}, base)
  assert any("Pratt" in n for n in zero.notes)
  assert zero.wilcoxon_p == pytest.approx(
    sps.wilcoxon([0, 0.02, 0.03, -0.01, 0.01], zero_method="pratt").pvalue
  )
  same = stats.paired_comparison(base, base)
  assert math.isnan(same.t_p) and math.isnan(same.wilcoxon_p) and math.isnan(same.d_z)
  assert any("all paired differences are 0" in n for n in same.notes)


def test_clear_errors_for_unpaired_seeds_and_too_few_values():
  with pytest.raises(ValueError, match=r"unpaired seeds .*only in the condition: \[7\]"):
    stats.paired_comparison({0: 0.5, 1: 0.6, 7: 0.4}, {0: 0.5, 1: 0.55})
  c = stats.paired_comparison(
    {0: 0.5, 1: 0.6, 2: 0.5, 7: 0.4}, {0: 0.5, 1: 0.55, 2: 0.52}, allow_unpaired=True
  )
  assert c.seeds == (0, 1, 2) and "unpaired seeds dropped" in c.notes[0]
  with pytest.raises(ValueError, match="needs >= 2"):
    stats.paired_comparison({0: 0.5}, {0: 0.4})
  with pytest.raises(ValueError, match="n >= 2"):
    stats.summarize([0.5])


def test_holm_against_hand_computed_example():
  # Sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> running max 0.06.
  assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
  # NaN is not a comparison (m = 2); adjusted values are capped at 1.
  out = stats.holm([0.5, np.nan, 0.3])
  assert out[0] == pytest.approx(0.6) and np.isnan(out[1]) and out[2] == pytest.approx(0.6)
  assert stats.holm([0.7, 0.8]) == pytest.approx([1.0, 1.0])


def test_bootstrap_ci_equals_scipy_and_handles_constant_data():
  dead = [0.0, 0.02, 0.0, 0.3, 0.01, 0.0]
  lo, hi = stats.bootstrap_ci(dead)
  ref = sps.bootstrap((np.array(dead),), np.mean, n_resamples=9999, rng=0).confidence_interval
  assert (lo, hi) == pytest.approx((ref.low, ref.high))
  assert lo <= np.mean(dead) <= hi
  assert stats.bootstrap_ci([0.0] * 5) == (0.0, 0.0)


# ----------------------------------------------------------------------------
# A synthetic sweep on disk with a planted effect
# ----------------------------------------------------------------------------


def write_run(
  workdir: Path,
  seed: int,
  accuracy: float,
  epochs: int = 3,
  layers: int = 3,
  test: bool = True,
  dead: float = 0.1,
  diagnostics: bool = True,
) -> None:
  """One run's config.json and metrics.jsonl in the layout training writes."""
  workdir.mkdir(parents=True, exist_ok=True)
  config = {
    "seed": seed,
    "model": "mlp",
    "mlp_depth": layers,
    "activation": workdir.parent.name,
    "learning_rate": 1e-3,
    "num_epochs": epochs,
    "eval_split": "train[45000:]",
  }
  (workdir / "config.json").write_text(json.dumps(config))
  steps_per_epoch = 10
  records = []
  for epoch in range(1, epochs + 1):
    step = epoch * steps_per_epoch
    val = accuracy - 0.05 * (epochs - epoch)
    records.append(
      {
        "split": "train",
        "step": step,
        "epoch": epoch,
        "loss": 2.0 / epoch,
        "accuracy": val + 0.01,
        "seconds": 1.0,
        "ms_per_step": 100.0,
      }
    )
    records.append(
      {"split": "eval", "step": step, "epoch": epoch, "loss": 2.1 / epoch, "accuracy": val}
    )
  for step in range(0, epochs * steps_per_epoch + 1, 5) if diagnostics else ():
    epoch = max(1, math.ceil(step / steps_per_epoch))
    records.append(diagnostics_record(step, epoch, step / (epochs * steps_per_epoch), layers, dead))
  if test:
    records.append(
      {
        "split": "test",
        "step": epochs * steps_per_epoch,
        "epoch": epochs,
        "loss": 1.0,
        "accuracy": accuracy - 0.003,
        "selected_epoch": epochs,
        "eval_accuracy": accuracy,
      }
    )
  with open(workdir / "metrics.jsonl", "w") as f:
    f.writelines(json.dumps(r) + "\n" for r in records)


def diagnostics_record(step: int, epoch: int, frac: float, layers: int, dead: float) -> dict:
  """Per-layer diagnostics; the first layer's gradient is exactly 0 at step 0."""
  layer = [f"layer_{i:02d}" for i in range(layers)]
  return {
    "split": "diagnostics",
    "step": step,
    "epoch": epoch,
    "grad_norm": {
      k: 0.0 if (i == 0 and step == 0) else 10.0 ** (i - layers) for i, k in enumerate(layer)
    },
    "backprop_norm": {k: 10.0 ** (i - layers) * (1 + frac) for i, k in enumerate(layer)},
    "dead": {k: dead * frac for k in layer},
    "near_dead": {k: dead * frac * 1.5 for k in layer},
    "saturated": {k: 0.05 for k in layer},
  }


def write_sweep(
  root: Path, seeds: int = 8, effect: float = 0.02, sd: float = 0.005, with_spec: bool = True
) -> None:
  """relu (baseline), `better` = relu + effect, `null` = relu; paired by seed."""
  rng = np.random.default_rng(1234)
  base = 0.55 + rng.normal(0, 0.01, seeds)  # seed effect shared by all conditions
  conditions = {
    "relu": base,
    "better": base + effect + rng.normal(0, sd, seeds),
    "null": base + rng.normal(0, sd, seeds),
  }
  for name, acc in conditions.items():
    for s in range(seeds):
      write_run(root / name / f"seed_{s}", s, float(acc[s]), dead=0.3 if name == "relu" else 0.1)
  if with_spec:
    spec = {
      "config": "experiments/configs/activation_comparison.py",
      "conditions": [{"name": n, "fields": {"activation": n}} for n in conditions],
      "seeds": list(range(seeds)),
      "baseline": "relu",
    }
    (root / "sweep.json").write_text(json.dumps(spec))


@pytest.mark.parametrize("with_spec", [True, False])
def test_planted_effect_is_found_and_null_is_not(tmp_path, with_spec):
  write_sweep(tmp_path, with_spec=with_spec)
  sweep = stats.read_sweep(tmp_path)
  assert sweep.baseline == "relu" and not sweep.bad_runs()
  assert set(sweep.conditions) == {"relu", "better", "null"}
  acc = sweep.accuracies()
  assert all(len(v) == 8 for v in acc.values())
  assert all(r.source == "test" for r in sweep.ok_runs("relu").values())
  result = stats.compare_to_baseline(acc, "relu")
  better, null = result["better"], result["null"]
  assert better.t_p_holm < 0.05 and better.wilcoxon_p_holm < 0.05
  assert better.ci_low < 0.02 < better.ci_high
  assert better.mean_diff == pytest.approx(0.02, abs=0.005)
  assert better.d_z > 2
  assert null.t_p_holm > 0.05 and null.wilcoxon_p_holm > 0.05
  assert null.ci_low < 0 < null.ci_high


def test_bad_missing_and_unfinished_runs_are_reported_not_fatal(tmp_path):
  write_sweep(tmp_path, seeds=4)
  (tmp_path / "null" / "seed_1" / "metrics.jsonl").write_text('{"split": "eval", "st\n')
  (tmp_path / "better" / "seed_2" / "metrics.jsonl").unlink()
  write_run(tmp_path / "relu" / "seed_3", 3, 0.5, test=False)  # 3 of 3 epochs, no test record
  spec = json.loads((tmp_path / "sweep.json").read_text())
  spec["seeds"] = [0, 1, 2, 3, 4]  # seed 4 never started
  (tmp_path / "sweep.json").write_text(json.dumps(spec))
  sweep = stats.read_sweep(tmp_path)
  errors = {(r.condition, r.seed): r.error for r in sweep.bad_runs()}
  assert (
    errors[("null", 1)]
    == "no eval record (unfinished or empty); 1 line(s) of metrics.jsonl not readable"
  )
  assert errors[("better", 2)] == "no metrics.jsonl"
  assert all(errors[(c, 4)] == "not started: no run folder" for c in sweep.conditions)
  # A run without a test record follows the tutorial protocol (final epoch's eval accuracy).
  r3 = sweep.runs["relu"][3]
  assert r3.ok and r3.source == "final_eval" and r3.accuracy == pytest.approx(0.5)
  result = stats.compare_to_baseline(sweep.accuracies(), "relu")
  assert result["null"].seeds == (0, 2, 3)
  assert any("unpaired" in n for n in result["null"].notes)


def test_resumed_run_keeps_the_last_record_per_split_and_step(tmp_path):
  write_run(tmp_path / "relu", 0, 0.6)
  with open(tmp_path / "relu" / "metrics.jsonl", "a") as f:  # a resume re-logs the end
    f.write(
      json.dumps(
        {
          "split": "test",
          "step": 30,
          "epoch": 3,
          "loss": 1.0,
          "accuracy": 0.61,
          "selected_epoch": 2,
          "eval_accuracy": 0.59,
        }
      )
      + "\n"
    )
  run = stats.load_run(tmp_path / "relu")
  assert len(run.split("test")) == 1
  assert (run.accuracy, run.selected_epoch, run.val_accuracy) == (0.61, 2, 0.59)
  sweep = stats.sweep_from_workdirs([tmp_path / "relu"])
  assert sweep.conditions == ["relu"] and sweep.runs["relu"][0].ok
