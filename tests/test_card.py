"""scripts/card.py --train_seeds: the paired comparison against relu.

The sweep itself (scripts/sweep.py) is tested in test_sweep.py; here its
subprocess is replaced by one that checks the command it was given and writes
the finished runs that command plans, with chosen accuracies.
"""

import json
import shlex
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT
from scipy import stats as scipy_stats

from actlab import sweep

sys.path.insert(0, str(ROOT / "scripts"))
import card  # noqa: E402

RELU = {0: 0.50, 1: 0.60, 2: 0.70}
OTHER = {0: 0.55, 1: 0.62, 2: 0.71}


def finished_sweep(accuracy: dict[str, dict[int, float]], calls: list):
  """A stand-in for subprocess.run that writes the runs the command plans."""

  def run(cmd, cwd, check):
    assert cwd == ROOT and not check
    calls.append(cmd)
    args = dict(a[2:].split("=", 1) for a in cmd[2:] if a.startswith("--"))
    plan = sweep.plan(args["config"], seeds=sweep.parse_seeds(args["seeds"]))
    workdir = card.Path(args["workdir"])
    assert workdir.is_absolute()
    plan.save(workdir)
    for r in plan.runs():
      d = workdir / r.name
      d.mkdir(parents=True)
      (d / "config.json").write_text(sweep.run_config(plan, r).to_json())
      a = accuracy[r.name.split("/")[0]][r.seed]
      records = [{"split": "eval", "step": 4, "epoch": 1, "accuracy": a, "loss": 1.0},
                 {"split": "test", "step": 4, "epoch": 1, "accuracy": a, "loss": 1.0,
                  "selected_epoch": 1, "eval_accuracy": a}]
      (d / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in records))
    return subprocess.CompletedProcess(cmd, 0)

  return run


def test_training_section_states_the_paired_difference_and_its_interval(tmp_path, monkeypatch):
  calls = []
  spec = "leaky_relu(negative_slope=0.2)"
  monkeypatch.setattr(card.subprocess, "run",
                      finished_sweep({"relu": RELU, "leaky_relu": OTHER}, calls))
  lines = card.training_section(spec, 3, ["--config.batch_size=8"], tmp_path)
  (cmd,) = calls
  assert cmd[0] == sys.executable and cmd[-1] == "--config.batch_size=8"
  shown = shlex.split(lines[0].strip("`"))
  assert shown[:2] == ["python", "scripts/sweep.py"]
  assert f"--workdir={tmp_path / 'train' / 'leaky_relu_negative_slope_0_2'}" in shown
  text = "\n".join(lines)
  assert "`train[:4500]`" in text and "`test[:10%]`" in text
  diff = np.array([OTHER[s] - RELU[s] for s in RELU])
  half = scipy_stats.t.ppf(0.975, 2) * diff.std(ddof=1) / np.sqrt(3)
  (row,) = [x for x in lines if x.startswith("| leaky_relu |")]
  assert row.startswith(f"| leaky_relu | 3 | {diff.mean():+.4f} | [{diff.mean() - half:+.4f},"
                        f" {diff.mean() + half:+.4f}] |"), row


def test_training_section_of_relu_and_too_few_seeds(tmp_path, monkeypatch):
  monkeypatch.setattr(card.subprocess, "run", lambda *a, **k: pytest.fail("no sweep for relu"))
  assert "baseline" in card.training_section("relu", 3, [], tmp_path)[0]
  for n in (1, -2):
    with pytest.raises(card.app.UsageError, match="at least 2 seeds"):
      card.check_train_seeds(n)
  card.check_train_seeds(0), card.check_train_seeds(2)
