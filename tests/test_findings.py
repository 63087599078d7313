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
  row = {"diff_mean": 0.004, "diff_ci_low": -0.002, "diff_ci_high": 0.01, "tost_margin": 0.01}
  assert findings.against_claim({**row, "verdict": "higher"}) == "agrees"
  assert findings.against_claim({**row, "verdict": "lower"}).startswith("contradicts")
  equivalent = findings.against_claim({**row, "verdict": "equivalent within ±1 point"})
  assert equivalent == "no advantage beyond ±1 point (equivalent)"
  assert "on the claim side" in findings.against_claim({**row, "verdict": "inconclusive"})
  row["diff_mean"] = -0.004
  assert "on the opposite side" in findings.against_claim({**row, "verdict": "inconclusive"})
  row["diff_mean"] = 0.0
  assert "exactly 0" in findings.against_claim({**row, "verdict": "inconclusive"})


def test_published_gaps_are_tested_against_ours_with_both_errors(findings):
  """The 'ours − published' column, recomputed by hand from the proxy's runs
  and the README's means and SDs (Welch–Satterthwaite)."""
  from scipy import stats as sps

  sweep = stats.read_sweep(RUNS / "proxy")
  rows = [r for r in findings.report.condition_rows(sweep) if r["n_pairs"]]
  text = findings.published({"proxy": {"sweep": sweep, "rows": rows}})
  lines = text.splitlines()
  start = next(i for i, x in enumerate(lines) if x.startswith("| activation | Mish README"))
  table = []
  for x in lines[start + 2 :]:
    if not x.startswith("| "):
      break
    table.append([c.strip() for c in x.strip("|").split("|")])
  assert [r[0] for r in table] == [c for c in findings.MISH_README if c != "relu"]
  relu = sweep.ok_runs("relu")
  (m_r, sd_r), n_pub = findings.MISH_README["relu"], findings.MISH_RUNS
  differ = []
  for cells in table:
    cond = cells[0]
    runs = sweep.ok_runs(cond)
    d = np.array(
      [100 * (runs[s].accuracy - relu[s].accuracy) for s in sorted(set(runs) & set(relu))]
    )
    m_c, sd_c = findings.MISH_README[cond]
    v1, v2 = d.var(ddof=1) / len(d), (sd_c**2 + sd_r**2) / n_pub
    df2 = v2**2 / ((sd_c**4 + sd_r**4) / n_pub**2 / (n_pub - 1))
    df = (v1 + v2) ** 2 / (v1**2 / (len(d) - 1) + v2**2 / df2)
    gap = d.mean() - (m_c - m_r)
    p = 2 * sps.t.sf(abs(gap) / np.sqrt(v1 + v2), df)
    assert cells[4] == f"{gap:+.2f} ({findings.fmt_p(p)})", cond
    if p < 0.05:
      differ.append(cond)
  assert f"for {len(differ)} of 9 ({', '.join(differ)})" in text


def test_rank_agreement_with_the_published_table(findings):
  sweep = stats.read_sweep(RUNS / "proxy")
  line = findings.published_rank(sweep, "proxy")
  conds = [c for c in sweep.conditions if c in findings.MISH_README]
  ours = [np.mean([r.accuracy for r in sweep.ok_runs(c).values()]) for c in conds]
  tau = sps_kendalltau(ours, [findings.MISH_README[c][0] for c in conds])
  assert f"τ = {tau:+.2f}, 95% bootstrap interval [" in line
  lo, hi = map(float, line.split("interval [")[1].split("]")[0].split(", "))
  assert lo <= hi
  few = stats.read_sweep(RUNS / "budget10")
  assert "(no interval: it needs ≥ 10 seeds)" in findings.published_rank(few, "10 epochs")


def test_published_comparison_with_a_missing_or_no_study(findings):
  assert findings.published({}) == "The comparison studies have no finished runs yet."
  sweep = stats.read_sweep(RUNS / "proxy")
  rows = [r for r in findings.report.condition_rows(sweep) if r["condition"] != "mish"]
  text = findings.published({"proxy": {"sweep": sweep, "rows": rows}})
  assert "| mish | +0.82 | – | – | – |" in text


def sps_kendalltau(a, b) -> float:
  from scipy import stats as sps

  return float(sps.kendalltau(a, b).statistic)
