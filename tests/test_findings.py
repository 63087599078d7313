"""docs/findings.md and the README's results block are what
scripts/findings.py makes of the committed runs under docs/runs."""

import importlib.util
import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from actlab import stats

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "docs" / "runs"


def _findings():
  spec = importlib.util.spec_from_file_location("findings", ROOT / "scripts" / "findings.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


@pytest.fixture(scope="module")
def findings():
  return _findings()


def test_findings_and_readme_are_regenerated_from_the_committed_runs(findings, tmp_path):
  readme = tmp_path / "README.md"
  shutil.copy(ROOT / "README.md", readme)
  out = tmp_path / "findings.md"
  assert findings.main([f"--runs={RUNS}", f"--out={out}", f"--readme={readme}"]) == 0
  assert out.read_text() == (ROOT / "docs" / "findings.md").read_text(), (
    "docs/findings.md is stale: python scripts/findings.py --runs=docs/runs"
    " --out=docs/findings.md --readme=README.md --figures=docs/figures"
  )
  assert readme.read_text() == (ROOT / "README.md").read_text()
  text = out.read_text()
  for must in ("Convergence check", "Holm p over the document |", "What these results do not show"):
    assert must in text


def test_sigmoid_depth_30_gradient_ratio_is_finite_and_as_predicted(findings):
  sweep = stats.read_sweep(RUNS / "vanishing")
  ratios = [
    findings._log10_ratio(r, "backprop_norm", 0) for r in sweep.ok_runs("sigmoid_d30").values()
  ]
  assert len(ratios) >= 5 and all(math.isfinite(x) for x in ratios)
  mean = sum(ratios) / len(ratios)
  assert -19.5 < mean < -17.0, mean
  # Signal propagation's prediction, no fitted parameter: within 0.5 in log10.
  assert abs(findings.predicted_ratio("sigmoid", "glorot_uniform", 30) - mean) < 0.5
  relu = [findings._log10_ratio(r, "backprop_norm", 0) for r in sweep.ok_runs("relu_d30").values()]
  assert abs(findings.predicted_ratio("relu", "glorot_uniform", 30) - sum(relu) / len(relu)) < 0.2


def test_the_weight_gradient_column_spans_the_hidden_layers_only(findings, tmp_path):
  run = stats.Run(workdir=tmp_path, condition="x", seed=0)
  run.records = [
    {
      "split": "diagnostics",
      "step": 0,
      "backprop_norm": {"layer_00": 1e-3, "layer_01": 1.0},
      "grad_norm": {"layer_00": 1e-2, "layer_01": 1.0, "layer_02": 1e3},  # layer_02: output
    }
  ]
  assert findings._log10_ratio(run, "grad_norm", 0) == pytest.approx(-2.0)
  assert findings._log10_ratio(run, "backprop_norm", 0) == pytest.approx(-3.0)
  assert re.search(r"first/last hidden", (ROOT / "docs" / "findings.md").read_text())


def test_a_study_with_only_its_plan_counts_as_not_run(findings, tmp_path):
  study = tmp_path / "budget10"
  study.mkdir()
  shutil.copy(RUNS / "proxy" / "sweep.json", study / "sweep.json")
  assert not findings.has_runs(tmp_path, "budget10")
  run = study / "relu" / "seed_0"
  run.mkdir(parents=True)
  (run / "done.json").write_text("{}")
  assert findings.has_runs(tmp_path, "budget10")
  assert not findings.has_runs(tmp_path, "factorial")


def test_the_convergence_verdict_follows_the_share_of_runs_at_their_last_epoch(findings):
  def verdict(at_last, runs):
    return findings.convergence_sentence(dict(runs=runs, at_last=at_last, median_gain=0.1), 10)

  assert "most runs were still improving" in verdict(3, 4)
  assert "most runs peaked before" in verdict(1, 4)
  assert "half the runs" in verdict(1, 2) and "most" not in verdict(1, 2)


def test_provenance_table_flags_a_study_trained_by_two_commits(findings, tmp_path):
  def run(study, name, *commits, execution=None):
    d = tmp_path / study / name / "seed_0"
    d.mkdir(parents=True)
    (tmp_path / study / "sweep.json").write_text("{}")
    (d / "done.json").write_text("{}")
    lines = [{"git_commit": c * 40, "git_dirty": False, **(execution or {})} for c in commits]
    (d / "provenance.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))

  one = {"platform": "cpu", "cpus": 1, "xla_flags": "--xla_cpu_multi_thread_eigen=false"}
  run("steady", "relu", "a", execution=one)
  run("steady", "tanh", "a", "a", execution=one)
  table = findings.provenance(tmp_path)
  assert (
    "| steady | 2 | 2 | aaaaaaa | cpu, 1 core(s), --xla_cpu_multi_thread_eigen=false |" in table
  )
  assert "trained, start and resume, by one commit" in table
  run("mixed", "relu", "a")
  run("mixed", "tanh", "a", "b")  # resumed by other code
  table = findings.provenance(tmp_path)
  assert "| mixed | 2 | 2 | aaaaaaa, bbbbbbb | not recorded |" in table
  assert "**Mixed code versions** in mixed." in table


def test_published_claims_are_read_from_the_verdicts(findings):
  row = {"diff_mean": 0.004, "diff_ci_low": -0.002, "diff_ci_high": 0.01}
  assert findings.against_claim({**row, "verdict": "higher"}) == "agrees"
  assert findings.against_claim({**row, "verdict": "lower"}).startswith("contradicts")
  assert "equivalent" in findings.against_claim({**row, "verdict": "equivalent within ±1 point"})
  assert "same side" in findings.against_claim({**row, "verdict": "inconclusive"})
  row["diff_mean"] = -0.004
  assert "opposite side" in findings.against_claim({**row, "verdict": "inconclusive"})


def test_published_gaps_are_checked_against_the_paired_intervals(findings):
  """The 'inside our CI' column, recomputed from the proxy's runs with scipy."""
  from scipy import stats as sps

  sweep = stats.read_sweep(RUNS / "proxy")
  rows = [r for r in findings.report.condition_rows(sweep) if r["n_pairs"]]
  text = findings.published({"proxy": {"sweep": sweep, "rows": rows}})
  table = [x for x in text.splitlines() if x.startswith("| ") and "|---" not in x][1:10]
  assert len(table) == len(findings.MISH_README) - 1
  relu = sweep.ok_runs("relu")
  for line in table:
    cells = [c.strip() for c in line.strip("|").split("|")]
    cond, gap = cells[0], float(cells[1])
    runs = sweep.ok_runs(cond)
    d = [100 * (runs[s].accuracy - relu[s].accuracy) for s in sorted(set(runs) & set(relu))]
    lo, hi = sps.t.interval(0.95, len(d) - 1, loc=np.mean(d), scale=sps.sem(d))
    assert cells[4] == ("yes" if lo <= gap <= hi else "no"), cond
  inside = sum(line.rstrip().endswith("| yes |") for line in table)
  assert f"inside our 95% interval for {inside} of 9 on the proxy" in text
