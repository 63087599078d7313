"""actlab.designs on synthetic sweeps: selection on validation, factorial contrasts."""

import json
from pathlib import Path

import numpy as np
import pytest
from test_stats import write_run

from actlab import designs, stats

# Choose Adam's rate per activation on validation; relu is the baseline.
SELECT_RATE = {
  "group": "model.activation",
  "choose": "optim.learning_rate",
  "shared": 0.001,
  "baseline": "relu",
}


def _set_test_accuracy(run: Path, value: float) -> None:
  lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
  lines[-1]["accuracy"] = value
  (run / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))


def _spec(root: Path, conditions: dict, design: dict, baseline: str, seeds: int) -> None:
  spec = {
    "config": "x.py",
    "conditions": [{"name": n, "fields": f} for n, f in conditions.items()],
    "seeds": list(range(seeds)),
    "baseline": baseline,
    "design": design,
  }
  (root / "sweep.json").write_text(json.dumps(spec))


def test_select_chooses_on_validation_and_compares_at_the_chosen_rates(tmp_path):
  seeds, rng = 6, np.random.default_rng(0)
  base = 0.5 + rng.normal(0, 0.01, seeds)
  val = {  # (activation, rate) -> validation accuracy offset
    ("relu", 0.001): 0.0,
    ("relu", 0.003): 0.01,
    ("tanh", 0.001): 0.03,
    ("tanh", 0.003): 0.0,
  }
  conditions = {}
  for (act, lr), off in val.items():
    name = f"{act}_lr{lr:g}"
    conditions[name] = {"model.activation": act, "optim.learning_rate": lr}
    for s in range(seeds):
      run = tmp_path / name / f"seed_{s}"
      write_run(run, s, float(base[s] + off))
      # The test split favours the rate validation does not choose: it must not decide.
      bonus = 0.05 if off == 0 else 0.0
      _set_test_accuracy(run, float(base[s] + bonus + 0.003 * (s % 3) * (act == "tanh")))
  design = {"select": dict(SELECT_RATE)}
  _spec(tmp_path, conditions, design, "relu_lr0.001", seeds)
  sweep = stats.read_sweep(tmp_path)
  sel = designs.select(sweep, sweep.design["select"])
  assert sel.chosen == {"relu": "relu_lr0.003", "tanh": "tanh_lr0.001"}
  assert sel.val_means["tanh"][0.001] == pytest.approx(float(np.mean(base)) + 0.03)
  (c,) = sel.at_chosen.values()
  assert (c.condition, c.baseline, c.family_size) == ("tanh_lr0.001", "relu_lr0.003", 1)
  jitter = np.mean([0.003 * (s % 3) for s in range(seeds)])
  assert c.mean_diff == pytest.approx(jitter)  # both chosen rates have no test bonus
  (shared,) = sel.at_shared.values()
  assert (shared.condition, shared.baseline) == ("tanh_lr0.001", "relu_lr0.001")
  assert shared.mean_diff == pytest.approx(jitter - 0.05)
  text = "\n".join(_report().design_sections(sweep))
  assert "| tanh | 0.5" in text and "at each model.activation's chosen" in text
  md, files = _report().report(sweep, tmp_path / "report")
  assert tmp_path / "report" / "design_selection.png" in files
  assert "![design_selection](design_selection.png)" in md
  summary = _findings().select_summary(sweep, sel)
  assert summary.startswith(
    "Rates chosen on validation: relu 0.003, tanh 0.001 — 1 of 2 activations away from the"
    " shared 0.001."
  )
  lower = f"lower for tanh ({shared.mean_diff * 100:+.2f} [{shared.ci_low * 100:+.2f},"
  assert f"At the shared rate: {lower}" in summary
  assert f"changes with the rate for tanh (lower at 0.001, {c.verdict} at its own rate)" in summary


FACTORIAL = {"group": "model.activation", "factors": ["data.input_scaling", "model.kernel_init"]}


def _factorial_sweep(root: Path, planted: dict, base: np.ndarray, noise=None) -> stats.Sweep:
  """A 2x2 per activation with planted (scaling, init, interaction) effects;
  `noise`, if given, is added per cell and seed."""
  conditions = {}
  for k, (act, (a, b, ab)) in enumerate(planted.items()):
    for s_name, scaling, i in (("raw", "raw", 0), ("std", "standardize", 1)):
      for init_name, init, j in (("glorot", "glorot_uniform", 0), ("own", "he_normal", 1)):
        # main effects a, b and interaction ab = y11 - y10 - y01 + y00
        y = base + a * (i - 0.5) + b * (j - 0.5) + ab * (i - 0.5) * (j - 0.5)
        if noise is not None:
          y = y + noise[k, i, j]
        name = f"{act}_{s_name}_{init_name}"
        conditions[name] = {
          "model.activation": act,
          "data.input_scaling": scaling,
          "model.kernel_init": init,
        }
        for s in range(len(base)):
          run = root / name / f"seed_{s}"
          write_run(run, s, float(y[s]))
          _set_test_accuracy(run, float(y[s]))
  _spec(root, conditions, {"factorial": FACTORIAL}, "relu_raw_glorot", len(base))
  return stats.read_sweep(root)


def test_factorial_contrasts_equal_the_planted_effects_per_seed(tmp_path):
  seeds, rng = 5, np.random.default_rng(1)
  base = 0.5 + rng.normal(0, 0.01, seeds)
  planted = {"relu": (0.02, 0.01, 0.004), "elu": (0.0, -0.01, 0.0)}  # scaling, init, interaction
  sweep = _factorial_sweep(tmp_path, planted, base)
  fac = designs.factorial(sweep, sweep.design["factorial"])
  assert len(fac.contrasts) == 6
  for act, (a, b, ab) in planted.items():
    got = [
      fac.contrasts[(act, k)].mean_diff
      for k in ("data.input_scaling", "model.kernel_init", "interaction")
    ]
    np.testing.assert_allclose(got, [a, b, ab], atol=1e-9)
    assert fac.contrasts[(act, "interaction")].family_size == 6
  assert fac.levels["relu"] == (("raw", "standardize"), ("glorot_uniform", "he_normal"))
  text = "\n".join(_report().design_sections(sweep))
  assert "| relu | interaction |" in text and "Holm over all 6 contrasts" in text
  md, files = _report().report(sweep, tmp_path / "report")
  assert tmp_path / "report" / "design_interaction.png" in files
  assert "![design_interaction](design_interaction.png)" in md
  y00 = np.mean(base + 0.02 * -0.5 + 0.01 * -0.5 + 0.004 * 0.25)  # relu, raw, glorot
  assert f"| relu | raw | {y00:.4f} (5) |" in text


def test_factorial_at_two_seeds_shows_no_bootstrap_instead_of_nan(tmp_path):
  """Two seeds are too few for a BCa interval: the cell says '-', not 'nan'."""
  rng = np.random.default_rng(3)
  sweep = _factorial_sweep(
    tmp_path,
    {"relu": (0.02, 0.01, 0.0)},
    0.5 + rng.normal(0, 0.01, 2),
    rng.normal(0, 0.01, (1, 2, 2, 2)),
  )
  text = "\n".join(_report().design_sections(sweep))
  rows = [line for line in text.splitlines() if line.startswith("| relu | ")][:3]
  assert len(rows) == 3 and all(row.split(" | ")[5] == "-" for row in rows), rows
  assert "nan" not in text


def _findings():
  from test_findings import _findings as load  # pylint: disable=g-import-not-at-top

  return load()


def _report():
  from actlab.cli import report  # pylint: disable=g-import-not-at-top

  return report


def test_designs_say_which_cells_have_no_finished_run(tmp_path):
  """A choice among the finished rates only, or a 2x2 with an empty cell, is
  named as such instead of passing for the design's answer."""
  conditions = {
    f"{act}_lr{lr:g}": {"model.activation": act, "optim.learning_rate": lr}
    for act in ("relu", "tanh")
    for lr in (0.001, 0.003)
  }
  # tanh_lr0.003 not run; relu_lr0.003 has one seed less than relu_lr0.001
  for name, seeds in (("relu_lr0.001", 3), ("relu_lr0.003", 2), ("tanh_lr0.001", 3)):
    for s in range(seeds):
      write_run(tmp_path / name / f"seed_{s}", s, 0.5 + 0.01 * s)
  design = {"select": dict(SELECT_RATE)}
  _spec(tmp_path, conditions, design, "relu_lr0.001", 3)
  sweep = stats.read_sweep(tmp_path)
  sel = designs.select(sweep, sweep.design["select"])
  assert sel.not_run == {"tanh": [0.003]}
  text = "\n".join(_report().design_sections(sweep))
  assert "**Incomplete**" in text and "No finished run yet: tanh at 0.003." in text
  assert "| val acc @ 0.001 | val acc @ 0.003 |" in text and "| tanh | 0.5100 | - | 0.001 |" in text
  assert "fewer seeds than some values have: relu on 2 (3 at 0.001, 2 at 0.003)." in text
  # relu's rates are compared on the seeds both have (0 and 1), not on 3 against 2.
  runs = sweep.ok_runs("relu_lr0.001")
  assert sel.seeds["relu"] == [0, 1]
  assert sel.val_means["relu"][0.001] == pytest.approx(
    np.mean([runs[s].val_accuracy for s in (0, 1)])
  )
  assert sel.val_means["relu"][0.001] != pytest.approx(
    np.mean([r.val_accuracy for r in runs.values()])
  )

  conditions = {
    f"relu_{a}_{b}": {"model.activation": "relu", "data.input_scaling": a, "model.kernel_init": b}
    for a in ("raw", "standardize")
    for b in ("glorot_uniform", "he_normal")
  }
  root = tmp_path / "factorial"
  for k, name in enumerate(conditions):  # seed 0 in all four cells, seed 1 in three
    for s in (0, 1) if k < 3 else (0,):
      write_run(root / name / f"seed_{s}", s, 0.5)
      _set_test_accuracy(root / name / f"seed_{s}", 0.5 + 0.1 * s)
  _spec(root, conditions, {"factorial": FACTORIAL}, "relu_raw_glorot_uniform", 2)
  text = "\n".join(_report().design_sections(stats.read_sweep(root)))
  assert "(fewer than two seeds have finished all four cells): relu (1 so far)." in text
  # The cell means average seed 0 only, the one seed the contrasts could use.
  assert "| relu | raw | 0.5000 (1) | 0.5000 (1) | glorot_uniform → he_normal |" in text


def test_factorial_summary_reads_each_effect_by_its_verdict(tmp_path):
  seeds, rng = 8, np.random.default_rng(2)
  base = 0.5 + rng.normal(0, 0.01, seeds)
  planted = {"relu": (0.05, 0.0, 0.0), "elu": (0.0, -0.05, 0.0)}
  noise = rng.normal(0, 0.002, (2, 2, 2, seeds))
  sweep = _factorial_sweep(tmp_path, planted, base, noise)
  fac = designs.factorial(sweep, sweep.design["factorial"])
  text = _findings().factorial_summary(fac).splitlines()
  scaling, init = (
    fac.contrasts[("relu", "data.input_scaling")],
    fac.contrasts[("elu", "model.kernel_init")],
  )
  assert text[0].startswith(
    f"- data.input_scaling (raw → standardize): higher for relu ({scaling.mean_diff * 100:+.2f}"
  )
  assert text[0].endswith("equivalent within ±1 point for elu.")
  assert text[1].startswith(
    f"- model.kernel_init (glorot_uniform → he_normal): lower for elu ({init.mean_diff * 100:+.2f}"
  )
  assert text[2].endswith(": equivalent within ±1 point for relu, elu.")
