"""actlab.cli.report (actlab-report, scripts/report.py) on small synthetic sweeps:
table, CSVs, figures, bad runs."""

import csv
import itertools
import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
from test_stats import write_run, write_sweep

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def report():
  from actlab.cli import report as module

  return module


def _rows(path: Path) -> list[dict]:
  with open(path) as f:
    return list(csv.DictReader(f))


def test_sweep_report_holds_the_planted_effect_and_skips_a_corrupt_run(tmp_path, report, capsys):
  sweep = tmp_path / "sweep"
  write_sweep(sweep, seeds=6)
  (sweep / "null" / "seed_5" / "metrics.jsonl").write_text('{"split": "ev\n')  # torn, unreadable
  assert report.main([str(sweep)]) == 0
  out = sweep / "report"
  printed = capsys.readouterr().out
  assert "| better | 6 |" in printed and "| null | 5 |" in printed
  assert "Δ vs relu" in printed and "Holm p" in printed
  assert "null seed 5" in printed and "not readable" in printed

  results = {r["condition"]: r for r in _rows(out / "results.csv")}
  assert list(results) == ["relu", "better", "null"]
  better, null = results["better"], results["null"]
  assert float(better["t_p_holm"]) < 0.05
  # Six differences, all positive: the exact signed-rank p is 2 / 2**6, Holm doubles it.
  assert float(better["wilcoxon_p"]) == pytest.approx(2 / 2**6)
  assert float(better["wilcoxon_p_holm"]) == pytest.approx(4 / 2**6)
  assert float(better["diff_ci_low"]) < 0.02 < float(better["diff_ci_high"])
  assert float(null["t_p_holm"]) > 0.05 and null["n_pairs"] == "5"
  assert float(results["relu"]["dead_end_mean"]) == pytest.approx(0.3)
  assert better["metric"] == "test"

  runs = _rows(out / "runs.csv")
  assert len(runs) == 18
  bad = [r for r in runs if r["status"] != "ok"]
  assert [(r["condition"], r["seed"]) for r in bad] == [("null", "5")]
  assert bad[0]["status"].startswith("skipped: no eval record")

  for name in (
    "report.md learning_curves.png accuracy_by_condition.png grad_norm_by_layer.png"
    " grad_ratio_over_training.png backprop_norm_by_layer.png backprop_ratio_over_training.png"
    " dead_by_layer.png dead_units_over_training.png near_dead_over_training.png"
    " saturated_over_training.png"
  ).split():
    assert (out / name).stat().st_size > 0, name


def test_old_single_seed_workdirs_still_report(tmp_path, report, capsys):
  for name, acc in (("relu", 0.55), ("tanh", 0.53)):
    write_run(tmp_path / "study" / name, 0, acc, test=False, diagnostics=False)
  (tmp_path / "study" / "empty").mkdir()  # no metrics: ignored, as before
  workdirs = [str(p) for p in sorted((tmp_path / "study").iterdir())]
  assert report.main([*workdirs, f"--out={tmp_path / 'figs'}"]) == 0
  printed = capsys.readouterr().out
  assert "final-epoch eval acc" in printed and "| relu | 1 | 0.5500 |" in printed
  assert "## tanh" in printed and "| epoch | loss | acc |" in printed  # per-run epoch tables
  assert (tmp_path / "figs" / "learning_curves.png").exists()
  assert not (tmp_path / "figs" / "accuracy_by_condition.png").exists()  # no seeds to show
  # One workdir: the figures go next to it, as before.
  relu = tmp_path / "study" / "relu"
  assert report.main([str(relu)]) == 0
  assert (relu / "plots" / "report.md").exists() and (relu / "plots" / "runs.csv").exists()


def test_styles_are_distinct_for_many_conditions(report):
  styles = [report.style(i) for i in range(80)]
  assert len({(s["color"], s["linestyle"]) for s in styles}) == 80
  assert len({s["color"] for s in styles[:20]}) == 20
  for a, b in itertools.pairwise(styles[:24]):  # neighbours differ in colour and line style
    assert a["color"] != b["color"] and a["linestyle"] != b["linestyle"]


def test_zeros_on_a_log_axis_are_marked_not_dropped(report):
  fig, ax = plt.subplots()
  values_SxT = np.array([[1e-3, 0.0, 1e-5], [2e-3, 1e-4, 0.0]])
  marked = report.plot_band(ax, [0, 1, 2], values_SxT, report.style(0), "x", log=True)
  assert marked == 2
  line = ax.get_lines()[0].get_ydata()
  assert line[0] == pytest.approx(math.sqrt(2) * 1e-3) and np.isnan(line[1:]).all()
  plt.close(fig)


def test_sweep_with_no_finished_run_reports_what_is_missing(tmp_path, report, capsys):
  write_sweep(tmp_path, seeds=2)
  for p in tmp_path.glob("*/seed_1"):
    (p / "metrics.jsonl").write_text("")  # started, nothing logged yet
  for p in tmp_path.glob("*/seed_0"):
    for f in p.iterdir():
      f.unlink()
    p.rmdir()
  assert report.main([str(tmp_path)]) == 0
  printed = capsys.readouterr().out
  assert "accuracy (no finished run)" in printed
  assert "relu seed 1" in printed and "no eval record (unfinished or empty)" in printed
  assert "not started (3 runs): relu (seeds 0); better (seeds 0); null (seeds 0)" in printed
  assert len(_rows(tmp_path / "report" / "runs.csv")) == 6


def test_a_run_with_a_fully_skipped_epoch_reports_dashes(tmp_path, report, capsys):
  """Every step of epoch 2 skipped (nonfinite_policy=skip): its train loss
  and accuracy are NaN, which metrics.jsonl holds as the string 'nan'."""
  from actlab import writers

  wd = tmp_path / "run"
  write_run(wd, seed=0, accuracy=0.5, epochs=2, diagnostics=False)
  lines = (wd / "metrics.jsonl").read_text().splitlines()
  (wd / "metrics.jsonl").write_text(
    "\n".join(line for line in lines if '"train"' not in line or '"epoch": 2' not in line) + "\n"
  )
  writer = writers.MetricsWriter(wd, tensorboard=False)
  nan = float("nan")
  writer.write("train", 20, 2, loss=nan, accuracy=nan, skipped=10, seconds=1.0, ms_per_step=100.0)
  writer.close()
  assert '"loss": "nan"' in (wd / "metrics.jsonl").read_text()
  assert report.main([str(wd)]) == 0
  printed = capsys.readouterr().out
  assert "| 2 | - | - | 1.0500 |" in printed


def test_a_sweep_json_that_is_not_a_plan_is_one_error_line_naming_it(tmp_path, report, capsys):
  write_sweep(tmp_path, seeds=1)
  plan = tmp_path / "sweep.json"
  for text, says in (
    ("{}", "lacks 'conditions'"),
    ("[]", "holds a JSON list"),
    ('{"conditions": 5}', "'conditions' must be a list"),
    ("garbage{", "Cannot read the sweep plan"),
  ):
    plan.write_text(text)
    assert report.main([str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert str(plan) in err and says in err, err


def test_bands_stay_inside_the_metric_range_and_bars_are_never_negative(report):
  """Three seeds at chance and two that learned: the t-interval of the mean
  reaches below 0, which no accuracy can; the drawn band stops at 0."""
  values = np.array([[0.1, 0.1], [0.1, 0.1], [0.1, 0.1], [0.9, 0.95], [0.9, 0.95]])
  for limits, inside in (((None, None), False), ((0, 1), True)):
    fig, ax = plt.subplots()
    report.plot_band(ax, [1, 2], values, report.style(0), "sigmoid", limits=limits)
    ys = np.concatenate([p.vertices[:, 1] for p in ax.collections[0].get_paths()])
    assert (ys.min() >= 0 and ys.max() <= 1) == inside
    plt.close(fig)
  # An interval of identical values can round a hair off its mean.
  assert 0.5 + 1e-12 > 0.5 and report._yerr(0.5, 0.5 + 1e-12, 0.6) == [[0.0], [pytest.approx(0.1)]]
  assert report._yerr(0.5, math.nan, math.nan) is None
