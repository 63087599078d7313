r"""Tables, CSV and figures from saved runs or a seeded sweep, without retraining.

  python scripts/report.py SWEEP [--baseline=relu] [--out=DIR]
  python scripts/report.py WORKDIR [WORKDIR ...] [--baseline=NAME] [--out=DIR]

SWEEP is a folder written by scripts/sweep.py (sweep.json and
CONDITION/seed_<s>/ runs) or any folder of condition subfolders. Each WORKDIR
is one condition: a single run (the old one-seed layout, e.g. docs/runs/*/*)
or a folder of seed_<s>/ runs.

Each run contributes one number: the test accuracy at the epoch selected on
the validation split (its "test" record), or, for runs without a test split
(the tutorial protocol), the final epoch's eval accuracy. Per condition: mean,
95% t-interval over seeds; against the baseline, paired by seed: mean
difference with its 95% CI, paired t-test, Wilcoxon signed-rank, Holm-adjusted
p across the comparisons, Cohen's d_z (actlab.stats). Dead, near-dead and
saturated fractions get bootstrap intervals.

Writes DIR/report.md (also printed), results.csv (one row per condition),
runs.csv (one row per run) and PNG figures with mean ± 95% CI bands over seeds.
A missing, corrupt or unfinished run is listed and left out. DIR defaults to
SWEEP/report, to the workdirs' common parent + /report, or for one run to
WORKDIR/plots. An --out ending in .md names the report file itself.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib import lines as mlines  # noqa: E402
from matplotlib import transforms as mtransforms  # noqa: E402

from actlab import designs, inference, stats  # noqa: E402
from actlab import sweep as sweep_lib  # noqa: E402
from actlab.cli import console  # noqa: E402

# ----------------------------------------------------------------------------
# Per-run numbers
# ----------------------------------------------------------------------------

FRACTIONS = {  # diagnostics key -> what the figure and table call it
  "dead": "dead units",
  "near_dead": "near-dead units",
  "saturated": "saturated units",
}


def _layer_mean(values: dict) -> float:
  # max(0, .): runs logged before dead_fraction was computed as a mean of
  # booleans stored 1 - mean(alive), which rounds to -1e-8 when all are alive.
  return max(sum(values.values()) / len(values), 0.0) if values else math.nan


def _ratio(norms: dict) -> float:
  v = list(norms.values())  # forward order, output layer last
  return v[0] / v[-1] if v and v[-1] else math.nan


def final_step(run: stats.Run) -> int:
  return max((r["step"] for r in run.records if r["split"] in ("train", "eval", "test")), default=0)


def diagnostics(run: stats.Run) -> list[dict]:
  return run.split("diagnostics")


def end_value(run: stats.Run, key: str) -> float:
  """Mean over layers of a diagnostics fraction at the last logged step."""
  d = [r for r in diagnostics(run) if key in r]
  return _layer_mean(d[-1][key]) if d else math.nan


def run_row(run: stats.Run) -> dict:
  d = diagnostics(run)
  evals = run.by_epoch("eval")
  return {
    "condition": run.condition,
    "seed": run.seed,
    "status": "ok" if run.ok else f"skipped: {run.error}",
    "metric": run.source,
    "accuracy": run.accuracy,
    "val_accuracy": run.val_accuracy,
    "selected_epoch": run.selected_epoch,
    "final_epoch": run.final_epoch,
    "final_eval_accuracy": evals[max(evals)]["accuracy"] if evals else math.nan,
    "train_seconds": sum(r.get("seconds", 0.0) for r in run.split("train")),
    "final_step": final_step(run) if run.records else None,
    "last_diagnostics_step": d[-1]["step"] if d else None,
    **{f"{k}_end": end_value(run, k) for k in FRACTIONS},
    "grad_ratio_init": _ratio(d[0]["grad_norm"]) if d and "grad_norm" in d[0] else math.nan,
    "grad_ratio_end": _ratio(d[-1]["grad_norm"]) if d and "grad_norm" in d[-1] else math.nan,
    "workdir": str(run.workdir),
  }


# ----------------------------------------------------------------------------
# Per-condition statistics
# ----------------------------------------------------------------------------


def _summary(values: list[float]) -> dict:
  values = [v for v in values if math.isfinite(v)]
  if len(values) >= 2:
    s = stats.summarize(values)
    return {"n": s.n, "mean": s.mean, "sd": s.sd, "ci_low": s.ci_low, "ci_high": s.ci_high}
  mean = values[0] if values else math.nan
  return {"n": len(values), "mean": mean, "sd": math.nan, "ci_low": math.nan, "ci_high": math.nan}


def _bootstrap(values: list[float]) -> tuple[float, float, float]:
  values = [v for v in values if math.isfinite(v)]
  if not values:
    return math.nan, math.nan, math.nan
  lo, hi = stats.bootstrap_ci(values) if len(values) >= 2 else (math.nan, math.nan)
  return float(np.mean(values)), lo, hi


def condition_rows(sweep: stats.Sweep) -> list[dict]:
  """One row per condition: summaries, paired comparison, diagnostics at the end."""
  acc = sweep.accuracies()
  usable = {c: v for c, v in acc.items() if v}
  comparisons = stats.compare_pairs(usable, table_family(sweep, usable))
  rows = []
  for c in sweep.conditions:
    runs = list(sweep.ok_runs(c).values())
    s, v = _summary(list(acc[c].values())), _summary([r.val_accuracy for r in runs])
    row = {
      "condition": c,
      "metric": "+".join(sorted({r.source for r in runs})) or "-",
      "eval_split": "+".join(sorted({str(r.field("data.eval_split", "?")) for r in runs})),
    }
    row |= s | {f"val_{k}": x for k, x in v.items() if k != "sd"}
    cmp = comparisons.get(c)
    row |= {
      "baseline": sweep.baseline or "",
      "n_pairs": cmp.n if cmp else 0,
      "diff_mean": cmp.mean_diff if cmp else math.nan,
      "diff_sd": cmp.sd_diff if cmp else math.nan,
      "diff_ci_low": cmp.ci_low if cmp else math.nan,
      "diff_ci_high": cmp.ci_high if cmp else math.nan,
      "t_statistic": cmp.t_statistic if cmp else math.nan,
      "t_p": cmp.t_p if cmp else math.nan,
      "wilcoxon_statistic": cmp.wilcoxon_statistic if cmp else math.nan,
      "wilcoxon_p": cmp.wilcoxon_p if cmp else math.nan,
      "t_p_holm": cmp.t_p_holm if cmp else math.nan,
      "wilcoxon_p_holm": cmp.wilcoxon_p_holm if cmp else math.nan,
      "d_z": cmp.d_z if cmp else math.nan,
      "diff_bca_low": cmp.bca_low if cmp else math.nan,
      "diff_bca_high": cmp.bca_high if cmp else math.nan,
      "permutation_p": cmp.permutation_p if cmp else math.nan,
      "permutation_exact": cmp.permutation_exact if cmp else "",
      "family_size": cmp.family_size if cmp else 0,
      "tost_margin": cmp.margin if cmp else math.nan,
      "tost_p": cmp.tost_p if cmp else math.nan,
      "verdict": cmp.verdict if cmp else "",
      "mde_80": cmp.mde if cmp else math.nan,
    }
    finished = [v for v in acc[c].values() if math.isfinite(v)]
    above = inference.leaves_chance(finished) if finished else None
    row |= {
      "above_chance": above.k if above else 0,
      "above_chance_low": above.low if above else math.nan,
      "above_chance_high": above.high if above else math.nan,
    }
    for k in FRACTIONS:
      mean, lo, hi = _bootstrap([end_value(r, k) for r in runs])
      row |= {f"{k}_end_mean": mean, f"{k}_end_ci_low": lo, f"{k}_end_ci_high": hi}
    row["notes"] = "; ".join(cmp.notes) if cmp else ""
    rows.append(row)
  return rows


def table_family(sweep: stats.Sweep, usable: dict) -> list[list[str]]:
  """The pairs the accuracy table tests: the declared family, or, for a
  design whose family is derived (a selection, a factorial), every condition
  against the baseline (exploratory; the design's own section is confirmatory)."""
  if sweep.design:
    if sweep.baseline not in usable:
      return []
    return [[c, sweep.baseline] for c in usable if c != sweep.baseline]
  return [p for p in sweep.declared_family() if p[0] in usable and p[1] in usable]


def write_csv(path: Path, rows: list[dict]) -> Path:
  with open(path, "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(
      {k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()} for row in rows
    )
  return path


# ----------------------------------------------------------------------------
# Markdown
# ----------------------------------------------------------------------------


def _number(x: float | str | None) -> float:
  """A logged value as a float: metrics.jsonl holds NaN and inf as strings
  (an epoch whose every step was skipped has a NaN loss)."""
  if isinstance(x, str):
    try:
      return float(x)
    except ValueError:
      return math.nan
  return math.nan if x is None else x


def _f(x: float | str | None, spec: str = ".4f") -> str:
  x = _number(x)
  return "-" if not math.isfinite(x) else format(x, spec)


def _p(x: float) -> str:
  return "-" if not math.isfinite(x) else ("<1e-4" if x < 1e-4 else f"{x:.4f}")


def estimate_cell(est: float, low: float, high: float) -> str:
  """A paired difference with its interval: '+0.0123 [+0.0045, +0.0201]'."""
  return f"{est:+.4f} [{low:+.4f}, {high:+.4f}]"


def _bca(low: float, high: float) -> str:
  """A BCa interval's cell: '-' where too few seeds for a bootstrap left it undefined."""
  return f"[{low:+.4f}, {high:+.4f}]" if math.isfinite(low) and math.isfinite(high) else "-"


def _metric_label(rows: list[dict]) -> str:
  metrics = {r["metric"] for r in rows if r["n"]}
  if metrics == {"test"}:
    return "test acc at val-selected epoch"
  if metrics == {"final_eval"}:
    splits = {r["eval_split"] for r in rows if r["n"]}
    return "final-epoch eval acc" + (f" ({splits.pop()} split)" if len(splits) == 1 else "")
  return "acc (MIXED protocols: see runs.csv)" if metrics else "accuracy (no finished run)"


def accuracy_table(rows: list[dict], baseline: str | None) -> str:
  """Mean ± 95% CI half-width; the paired difference with its interval."""
  if not any(r["n"] >= 2 for r in rows):  # one seed each: no intervals, no tests
    val = any(r["val_n"] for r in rows)
    lines = [
      f"| condition | seeds | {_metric_label(rows)} |" + (" validation acc |" if val else ""),
      "|---|---:|---:|" + ("---:|" if val else ""),
    ]
    for r in rows:
      cells = [r["condition"], str(r["n"]), _f(r["mean"])] + ([_f(r["val_mean"])] if val else [])
      lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
  lines = [
    f"| condition | seeds | {_metric_label(rows)} (mean ± 95% CI) | validation acc"
    f" | Δ vs {baseline or '-'} [95% t-CI] | Δ BCa 95% CI | paired-t p | permutation p"
    " | Holm p | TOST ±δ | MDE (80%) | d_z |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|",
  ]
  for r in rows:
    half = (r["ci_high"] - r["ci_low"]) / 2
    acc = f"{_f(r['mean'])} ± {_f(half)}" if r["n"] >= 2 else _f(r["mean"])
    val = r["val_mean"]
    val = (
      f"{_f(val)} ± {_f((r['val_ci_high'] - r['val_ci_low']) / 2)}" if r["val_n"] >= 2 else _f(val)
    )
    if r["n_pairs"]:
      diff = estimate_cell(r["diff_mean"], r["diff_ci_low"], r["diff_ci_high"])
      bca = _bca(r["diff_bca_low"], r["diff_bca_high"])
      tests = [
        _p(r["t_p"]),
        _p(r["permutation_p"]),
        _p(r["t_p_holm"]),
        r["verdict"],
        _f(r["mde_80"]),
        _f(r["d_z"], ".2f"),
      ]
    else:
      diff = "baseline" if r["condition"] == baseline else "- (not in the family, or < 2 pairs)"
      bca, tests = "", [""] * 6
    lines.append(
      f"| {r['condition']} | {r['n']} | {acc} | {val} | {diff} | {bca} | "
      + " | ".join(tests)
      + " |"
    )
  return "\n".join(lines)


COMPARISON_HEADER = (
  "| Δ [95% t-CI] | Δ BCa 95% CI | paired-t p | permutation p | Holm p | TOST ±δ | MDE (80%) |"
)


def comparison_cells(c: stats.Comparison) -> str:
  """One comparison's cells, in COMPARISON_HEADER's order."""
  return (
    f"| {estimate_cell(c.mean_diff, c.ci_low, c.ci_high)} | {_bca(c.bca_low, c.bca_high)}"
    f" | {_p(c.t_p)} | {_p(c.permutation_p)} | {_p(c.t_p_holm)}"
    f" | {c.verdict} | {_f(c.mde)} |"
  )


def format_level(value: Any) -> str:
  """A design level as a table shows it: numbers in %g, anything else as is."""
  return (
    f"{value:g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)
  )


def design_sections(sweep: stats.Sweep) -> list[str]:
  """The declared family of a `select` or `factorial` design (actlab.designs)."""
  out = []
  if "select" in sweep.design:
    sel = designs.select(sweep, sweep.design["select"])
    declared = {designs.field_value(sweep, c, sel.choose_field) for c in sweep.conditions}
    values = sorted(declared - {None}, key=lambda v: (str(type(v)), v))
    out += [f"## {sel.choose_field} chosen per {sel.group_field} on validation", ""]
    uneven = {
      g: [(len(sweep.ok_runs(c)), designs.field_value(sweep, c, sel.choose_field)) for c in conds]
      for g, conds in designs.groups(sweep, sel.group_field).items()
      if g not in sel.not_run and len({len(sweep.ok_runs(c)) for c in conds}) > 1
    }
    if uneven:
      listed = "; ".join(
        f"{g} on {len(sel.seeds.get(g, []))}"
        f" ({', '.join(f'{n} at {format_level(v)}' for n, v in counts)})"
        for g, counts in uneven.items()
      )
      out += [
        "Unequal seeds: each choice compares its values on the seeds they all have finished,"
        f" so the validation means below use fewer seeds than some values have: {listed}.",
        "",
      ]
    if sel.not_run:
      waiting = "; ".join(
        f"{g} at {', '.join(map(format_level, vs))}" for g, vs in sel.not_run.items()
      )
      out += [
        f"**Incomplete**: every {sel.choose_field} of a {sel.group_field} should have runs before"
        f" one is chosen; until then each choice is among the finished values only. No"
        f" finished run yet: {waiting}.",
        "",
      ]
    out += [
      f"| {sel.group_field} | "
      + " | ".join(f"val acc @ {format_level(v)}" for v in values)
      + " | chosen |",
      "|---|" + "---:|" * len(values) + "---:|",
    ]
    for g, means in sel.val_means.items():
      cells = [_f(means.get(v, math.nan)) for v in values]
      out.append(f"| {g} | " + " | ".join(cells) + f" | {format_level(sel.chosen_value[g])} |")
    for title, fam in (
      (f"at each {sel.group_field}'s chosen {sel.choose_field}", sel.at_chosen),
      (f"at the shared {sel.choose_field} {format_level(sel.shared)}", sel.at_shared),
    ):
      if not fam:
        continue
      out += [
        "",
        f"Test accuracy {title}, against {sel.baseline} at its own; paired by seed, Holm over"
        f" the {len(fam)} comparisons:",
        "",
        "| condition | vs | seeds " + COMPARISON_HEADER,
        "|---|---|---:" + "|---:" * 5 + "|---|---:|",
      ]
      out += [
        f"| {c.condition} | {c.baseline} | {c.n} " + comparison_cells(c) for c in fam.values()
      ]
    out.append("")
  if "factorial" in sweep.design:
    fac = designs.factorial(sweep, sweep.design["factorial"])
    f1, f2 = fac.factors
    out += [
      f"## Factorial: {f1} × {f2}, per {sweep.design['factorial']['group']}",
      "",
      f"Effects on test accuracy, paired by seed: a factor's effect is its high level minus its"
      f" low level averaged over the other factor; the interaction is the difference of the"
      f" {f2} effect between the {f1} levels. Holm over all {len(fac.contrasts)} contrasts.",
      "",
      "| group | contrast | levels (low → high) | seeds " + COMPARISON_HEADER,
      "|---|---|---|---:" + "|---:" * 5 + "|---|---:|",
    ]
    for (g, name), c in fac.contrasts.items():
      (a0, a1), (b0, b1) = fac.levels[g]
      lv = {f1: f"{a0} → {a1}", f2: f"{b0} → {b1}"}.get(name, "")
      out.append(f"| {g} | {name} | {lv} | {c.n} " + comparison_cells(c))
    out += [
      "",
      "Cell means of test accuracy over the seeds that finished all four cells of their"
      " group (their number in brackets), the cells the contrasts combine:",
      "",
      f"| group | {f1} | {f2}: low | {f2}: high | {f2} levels |",
      "|---|---|---:|---:|---|",
    ]
    for g, ((a0, a1), (b0, b1)) in fac.levels.items():
      means, n = fac.cell_means[g], len(fac.seeds.get(g, ()))
      for a in (a0, a1):
        cells = [f"{_f(means.get((a, b)))} ({n})" for b in (b0, b1)]
        out.append(f"| {g} | {a} | {cells[0]} | {cells[1]} | {b0} → {b1} |")
    left = [g for g in fac.levels if (g, "interaction") not in fac.contrasts]
    if left:
      out += [
        "",
        "Not in the effects table (fewer than two seeds have finished all four cells): "
        + ", ".join(f"{g} ({len(fac.seeds.get(g, ()))} so far)" for g in left)
        + ".",
      ]
    out.append("")
  return out


def family_line(sweep: stats.Sweep, rows: list[dict]) -> str:
  """What the table's tests are: which family, its size, the margin, the power."""
  compared = [r for r in rows if r["n_pairs"]]
  if not compared:
    return ""
  m = compared[0]["family_size"]
  refs = sorted({r["baseline"] for r in compared} | set())
  kind = (
    "exploratory (every condition against the baseline; the design's section below holds"
    " the declared family)"
    if sweep.design
    else (
      "declared in the study config" if sweep.family else "every condition against the baseline"
    )
  )
  n = sorted({r["n_pairs"] for r in compared})
  margin = compared[0]["tost_margin"]
  return (
    f"Family: {m} paired comparisons, {kind}; Δ = condition − {sweep.baseline or refs}, paired by"
    f" seed (n = {'/'.join(map(str, n))}). Holm over the family (paired-t p). Permutation p:"
    f" exact sign-flip test over all 2^n sign patterns (smallest possible p at n = {n[0]}:"
    f" {2 / 2 ** n[0]:.3g}). TOST ±δ: equivalence at δ = {margin:g} (two one-sided paired t-tests,"
    " α = 0.05); 'inconclusive' = neither different after Holm nor equivalent. MDE: the"
    f" smallest true Δ the paired t-test detects with 80% power at Holm's first level"
    f" 0.05/{m}, given each row's SD of differences."
  )


def chance_lines(rows: list[dict]) -> list[str]:
  """Conditions where some seeds learn and some stay at chance: counts, not means."""
  out = []
  for r in rows:
    if r["n"] and r["above_chance"] < r["n"]:
      out.append(
        f"{r['condition']}: {r['above_chance']} of {r['n']} seeds leave chance level"
        f" (accuracy > 0.15; exact 95% CI of the fraction [{r['above_chance_low']:.2f},"
        f" {r['above_chance_high']:.2f}]); the mean and its t-interval describe no single run."
      )
  return out


def parts_used(c) -> tuple[str, str, str]:
  """(model, activation, learning rate) a run trained with, from its config
  or, for the parts its caller brought (config.json's `custom`), from those."""
  own_model, own_tx = c("custom.model", "config"), c("custom.optimizer", "config")
  if isinstance(own_model, dict):
    model = own_model.get("class", "own model").rsplit(".", 1)[-1] + " (own)"
    activation = (own_model.get("fields") or {}).get("activation", "-")
  else:
    depth = f" depth {c('model.mlp_depth')}" if c("model.name") == "mlp" else ""
    model, activation = c("model.name", "-") + depth, c("model.activation", "-")
  lr = "own optimizer" if isinstance(own_tx, dict) else c("optim.learning_rate", "-")
  return model, str(activation), str(lr)


def setup_table(sweep: stats.Sweep, rows: list[dict]) -> str:
  """What each condition ran, and its diagnostics at the last logged step."""
  lines = [
    "| condition | model | activation | lr | init | inputs | epochs | grad first/last at init"
    " | at last logged step | dead at end [CI] | near-dead [CI] | saturated [CI] |",
    "|---|---|---|---:|---|---|---:|---:|---:|---:|---:|---:|",
  ]
  for r in rows:
    runs = list(sweep.ok_runs(r["condition"]).values())
    if not runs:
      continue
    c = runs[0].field
    model, activation, lr = parts_used(c)
    per_run = [run_row(x) for x in runs]
    ratios = {k: _geomean([x[k] for x in per_run]) for k in ("grad_ratio_init", "grad_ratio_end")}
    fracs = [
      f"{_f(r[f'{k}_end_mean'], '.3f')} [{_f(r[f'{k}_end_ci_low'], '.3f')},"
      f" {_f(r[f'{k}_end_ci_high'], '.3f')}]"
      if r["n"] >= 2
      else _f(r[f"{k}_end_mean"], ".3f")
      for k in FRACTIONS
    ]
    lines.append(
      f"| {r['condition']} | {model} | `{activation}`"
      f" | {lr} | {c('model.kernel_init', '-')}"
      f" | {c('data.input_scaling', '-')}"
      f" | {max((x.final_epoch or 0) for x in runs)} | {_f(ratios['grad_ratio_init'], '.2e')}"
      f" | {_f(ratios['grad_ratio_end'], '.2e')} | " + " | ".join(fracs) + " |"
    )
  return "\n".join(lines)


def _geomean(values: list[float]) -> float:
  values = [v for v in values if math.isfinite(v)]
  if not values:
    return math.nan
  return 0.0 if min(values) <= 0 else float(np.exp(np.mean(np.log(values))))


def epoch_table(sweep: stats.Sweep) -> str:
  """Eval accuracy per epoch, mean over seeds."""
  curves = {
    c: _epoch_matrix(list(sweep.ok_runs(c).values()), "eval", "accuracy") for c in sweep.conditions
  }
  epochs = sorted({e for ep, _ in curves.values() for e in ep})
  lines = [
    "| condition | " + " | ".join(str(e) for e in epochs) + " |",
    "|---|" + "---:|" * len(epochs),
  ]
  for c, (ep, m) in curves.items():
    means = dict(zip(ep, stats.mean_band(m)[0])) if ep else {}
    lines.append(f"| {c} | " + " | ".join(_f(means.get(e, math.nan)) for e in epochs) + " |")
  return "\n".join(lines)


def run_epoch_table(run: stats.Run) -> str:
  """Keras-like per-epoch table of one run: loss, acc, val_loss, val_acc, seconds."""
  trains, evals = run.by_epoch("train"), run.by_epoch("eval")
  lines = [
    "| epoch | loss | acc | val_loss | val_acc | time (s) | ms/step |",
    "|---:|---:|---:|---:|---:|---:|---:|",
  ]
  for epoch in sorted(set(trains) & set(evals)):
    t, e = trains[epoch], evals[epoch]
    lines.append(
      f"| {epoch} | {_f(t['loss'])} | {_f(t['accuracy'])} | {_f(e['loss'])}"
      f" | {_f(e['accuracy'])} | {_f(t.get('seconds'), '.1f')}"
      f" | {_f(t.get('ms_per_step'), '.0f')} |"
    )
  return "\n".join(lines)


def left_out(sweep: stats.Sweep) -> list[str]:
  """Failed or unfinished runs one line each; runs not started in one line."""
  bad = sweep.bad_runs()
  if not bad:
    return []
  absent = defaultdict(list)
  lines = ["## Runs left out", ""]
  for r in bad:
    if r.error.startswith("not started"):
      absent[r.condition].append(str(r.seed))
    else:
      lines.append(f"- {r.condition} seed {r.seed} ({r.workdir}): {r.error}")
  if absent:
    todo = "; ".join(f"{c} (seeds {', '.join(seeds)})" for c, seeds in absent.items())
    lines.append(f"- not started ({sum(map(len, absent.values()))} runs): {todo}")
  return lines + [""]


def notes(sweep: stats.Sweep, rows: list[dict]) -> list[str]:
  out = []
  metric = {r["metric"] for r in rows if r["n"]}
  if "final_eval" in metric:
    out.append(
      "Runs without a test record follow the tutorial protocol: the number is the final"
      " epoch's eval accuracy (no epoch is selected, and no maximum over evaluations is taken)."
    )
  if "test" in metric:
    out.append(
      "Test accuracy is evaluated once, at the epoch with the best validation accuracy;"
      " 'validation acc' is that epoch's validation accuracy."
    )
  compared = [r for r in rows if r["n_pairs"]]
  if compared:
    out.append(
      "d_z = mean difference / SD of the differences; the Wilcoxon signed-rank p (raw and"
      " Holm) is in results.csv. Intervals: 95% t-intervals over seeds; dead, near-dead and"
      " saturated fractions: mean over layers at the last logged step, BCa bootstrap."
    )
  if any(r["n"] for r in rows) and not any(r["n"] >= 2 for r in rows):
    out.append(
      "One seed per condition: no intervals and no tests; differences of about 0.01 in accuracy"
      " are within seed noise. Rerun with scripts/sweep.py --seeds=5 or more."
    )
  out += [f"{r['condition']}: {r['notes']}" for r in rows if r["notes"]]
  stale = defaultdict(list)
  for c in sweep.conditions:
    for run in sweep.ok_runs(c).values():
      d = diagnostics(run)
      if d and d[-1]["step"] < final_step(run):
        stale[(d[-1]["step"], final_step(run))].append(f"{c}/{run.seed}")
  for (last, final), names in stale.items():
    out.append(
      f"Diagnostics of {', '.join(names[:6])}{' …' if len(names) > 6 else ''} end at step"
      f" {last}, before the final step {final}; 'at the last logged step' means step {last}."
    )
  return out


# ----------------------------------------------------------------------------
# Figures
# ----------------------------------------------------------------------------

LINESTYLES = ["-", "--", ":", "-."]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
# tab20's strong shades first, then its light ones: neighbours differ in hue.
COLORS = [plt.get_cmap("tab20")(i) for i in list(range(0, 20, 2)) + list(range(1, 20, 2))]


def style(i: int) -> dict:
  """Colour, line style and marker of the i-th condition; unique up to 80 conditions."""
  return {
    "color": COLORS[i % 20],
    "linestyle": LINESTYLES[(i + i // 20) % 4],
    "marker": MARKERS[i % len(MARKERS)],
  }


def _epoch_matrix(runs: list[stats.Run], split: str, key: str) -> tuple[list[int], np.ndarray]:
  by_run = [{e: r[key] for e, r in run.by_epoch(split).items() if key in r} for run in runs]
  epochs = sorted({e for d in by_run for e in d})
  return epochs, np.array([[d.get(e, np.nan) for e in epochs] for d in by_run], dtype=float)


def _step_matrix(runs: list[stats.Run], value) -> tuple[list[int], np.ndarray]:
  by_run = [{r["step"]: v for r in diagnostics(run) if (v := value(r)) is not None} for run in runs]
  steps = sorted({s for d in by_run for s in d})
  return steps, np.array([[d.get(s, np.nan) for s in steps] for d in by_run], dtype=float)


def plot_band(
  ax, x, values_SxT: np.ndarray, sty: dict, label: str, log: bool = False, limits=(-np.inf, np.inf)
) -> int:
  """Mean ± 95% CI band over seeds; on a log axis, geometric mean, and zeros marked.

  A point where any seed is exactly 0 cannot be drawn on a log axis: it is
  marked by a downward triangle on the bottom edge instead. Returns how many
  points were marked so. `limits` clips the band to the metric's range (a
  t-interval of a bimodal accuracy can reach below 0; no run can).
  """
  x = np.asarray(x, dtype=float)
  v = np.asarray(values_SxT, dtype=float)
  zero_T = np.zeros(x.shape, bool)
  if log:
    zero_T = np.any(v <= 0, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
      v = np.log10(np.where(v > 0, v, np.nan))
  mean_T, lo_T, hi_T = stats.mean_band(v)
  if log:
    mean_T, lo_T, hi_T = (np.where(zero_T, np.nan, 10.0**a) for a in (mean_T, lo_T, hi_T))
  ms = 3 if x.size <= 40 else 0
  ax.plot(x, mean_T, label=label, ms=ms, lw=1.4, **sty)
  if np.any(np.isfinite(lo_T)):
    lo_T, hi_T = np.clip(lo_T, *limits), np.clip(hi_T, *limits)
    ax.fill_between(x, lo_T, hi_T, color=sty["color"], alpha=0.18, lw=0)
  if zero_T.any():
    bottom = mtransforms.blended_transform_factory(ax.transData, ax.transAxes)
    ax.plot(
      x[zero_T], np.full(zero_T.sum(), 0.01), "v", color=sty["color"], ms=6,
      transform=bottom, clip_on=False, zorder=5,
    )  # fmt: skip
  return int(zero_T.sum())


def _zero_note(ax, marked: int) -> None:
  if marked:
    ax.text(
      0.99, 0.04, "▼ on the bottom edge: exactly 0 in ≥ 1 seed (no log value)",
      transform=ax.transAxes, ha="right", va="bottom", fontsize=7, color="0.3",
    )  # fmt: skip


def _legend(fig, sweep: stats.Sweep) -> None:
  handles = [
    mlines.Line2D([], [], ms=4, **style(i), label=f"{c} (n={len(sweep.ok_runs(c))})")
    for i, c in enumerate(sweep.conditions)
    if sweep.ok_runs(c)
  ]
  fig.legend(handles=handles, loc="outside right upper", fontsize=7, frameon=False)


def _save(fig, path: Path) -> Path:
  fig.savefig(path, dpi=120)
  plt.close(fig)
  return path


def _groups(sweep: stats.Sweep) -> dict[str, list[str]]:
  """Conditions grouped by model (and depth, and learning rate where they differ)."""
  first = {
    c: next(iter(sweep.ok_runs(c).values())).field for c in sweep.conditions if sweep.ok_runs(c)
  }
  several_lrs = len({f("optim.learning_rate") for f in first.values()}) > 1
  keyed: dict[tuple, list[str]] = defaultdict(list)
  for c, f in first.items():
    depth = f("model.mlp_depth", 0) if f("model.name") == "mlp" else 0
    keyed[(str(f("model.name", "")), depth, f("optim.learning_rate") if several_lrs else 0)].append(
      c
    )
  groups = {}
  for model, depth, lr in sorted(keyed):
    title = f"MLP, depth {depth}" if model == "mlp" else model or "runs"
    groups[title + (f", lr {lr:g}" if several_lrs else "")] = keyed[(model, depth, lr)]
  return groups


def learning_curves(sweep: stats.Sweep, out: Path) -> Path:
  panels = [("eval", "accuracy", "eval accuracy"), ("eval", "loss", "eval loss"),
            ("train", "loss", "train loss")]  # fmt: skip
  fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), layout="constrained")
  eval_split = ""
  for i, c in enumerate(sweep.conditions):
    runs = list(sweep.ok_runs(c).values())
    if not runs:
      continue
    eval_split = runs[0].field("data.eval_split", eval_split)
    for ax, (split, key, _) in zip(axes, panels):
      epochs, m = _epoch_matrix(runs, split, key)
      if epochs:
        plot_band(ax, epochs, m, style(i), c, limits=(0, 1) if key == "accuracy" else (0, np.inf))
  for ax, (_, _, title) in zip(axes, panels):
    ax.set(xlabel="epoch", ylabel=title.split()[-1], title=title)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
  if eval_split:
    axes[0].set_title(f"eval accuracy (split {eval_split})")
  several = any(len(sweep.ok_runs(c)) >= 2 for c in sweep.conditions)
  fig.suptitle(
    "mean over seeds, band: 95% t-interval (clipped to the metric's range)"
    if several
    else "one seed per condition (no bands)",
    fontsize=9,
  )
  _legend(fig, sweep)
  return _save(fig, out / "learning_curves.png")


def _yerr(mean: float, lo: float, hi: float) -> list[list[float]] | None:
  """Error-bar lengths of an interval; none for a NaN interval, and never
  negative (an interval of identical values can land a rounding off its mean)."""
  if not (math.isfinite(lo) and math.isfinite(hi)):
    return None
  return [[max(mean - lo, 0.0)], [max(hi - mean, 0.0)]]


def _mean_ci_bar(ax, x: float, mean: float, lo: float, hi: float) -> None:
  ax.errorbar(x, mean, yerr=_yerr(mean, lo, hi), fmt="_", color="k", ms=14, capsize=4)


def accuracy_by_condition(sweep: stats.Sweep, rows: list[dict], out: Path) -> Path:
  """Every seed's number, mean ± 95% CI; paired differences to the baseline."""
  fig, (ax, ax_d) = plt.subplots(1, 2, figsize=(12, 4.2), layout="constrained")
  acc = sweep.accuracies()
  names = sweep.conditions
  for i, (c, r) in enumerate(zip(names, rows)):
    sty = style(i)
    ax.plot([i] * len(acc[c]), list(acc[c].values()), sty["marker"], color=sty["color"], alpha=0.5)
    if r["n"] >= 2:
      _mean_ci_bar(ax, i, r["mean"], r["ci_low"], r["ci_high"])
    if r["n_pairs"]:
      base = acc[sweep.baseline]
      diffs = [acc[c][s] - base[s] for s in acc[c] if s in base]
      ax_d.plot([i] * len(diffs), diffs, sty["marker"], color=sty["color"], alpha=0.5)
      _mean_ci_bar(ax_d, i, r["diff_mean"], r["diff_ci_low"], r["diff_ci_high"])
  ax.set(title=f"{_metric_label(rows)}: seeds, mean ± 95% CI", ylabel="accuracy")
  ax_d.axhline(0, color="0.4", lw=0.8)
  ax_d.set(
    title=f"paired difference to {sweep.baseline}: seeds, mean ± 95% CI", ylabel="Δ accuracy"
  )
  for a in (ax, ax_d):
    a.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
    a.grid(alpha=0.3, axis="y")
  return _save(fig, out / "accuracy_by_condition.png")


def over_training(sweep: stats.Sweep, out: Path, name: str, value, ylabel: str, log: bool) -> Path:
  """A diagnostic against the training step, one panel per model group, shared y."""
  groups = _groups(sweep)
  fig, axes = plt.subplots(1, len(groups), figsize=(4.4 * len(groups) + 2, 3.9),
                           sharey=True, squeeze=False, layout="constrained")  # fmt: skip
  for ax, (title, members) in zip(axes[0], groups.items()):
    marked, last = 0, 0
    for c in members:
      runs = list(sweep.ok_runs(c).values())
      steps, m = _step_matrix(runs, value)
      if steps:
        marked += plot_band(ax, steps, m, style(sweep.conditions.index(c)), c, log)
      last = max([last] + [final_step(r) for r in runs])
    ax.axvline(last, color="0.5", ls=":", lw=1)
    ax.text(
      last, 0.5, "final step", transform=ax.get_xaxis_transform(), rotation=90,
      ha="right", va="center", fontsize=7, color="0.4",
    )  # fmt: skip
    if log:
      ax.set_yscale("log")
    ax.set(xlabel="training step", title=title)
    ax.grid(alpha=0.3, which="both")
    _zero_note(ax, marked)
  axes[0][0].set_ylabel(ylabel)
  _legend(fig, sweep)
  return _save(fig, out / f"{name}.png")


def by_layer(sweep: stats.Sweep, out: Path, key: str, ylabel: str, log: bool) -> Path:
  """Per-layer values at initialisation (top) and at the last logged step (bottom)."""
  groups = _groups(sweep)
  fig, axes = plt.subplots(2, len(groups), figsize=(4.4 * len(groups) + 2, 7), sharey=True,
                           squeeze=False, layout="constrained")  # fmt: skip
  for col, (title, members) in enumerate(groups.items()):
    for row, pick in enumerate((0, -1)):
      ax, marked, where = axes[row][col], 0, set()
      for c in members:
        recs = [
          d[pick]
          for r in sweep.ok_runs(c).values()
          if (d := [x for x in diagnostics(r) if key in x])
        ]
        if not recs:
          continue
        where.add(recs[0]["step"])
        layers = list(recs[0][key])
        m = np.array([[rec[key].get(k, np.nan) for k in layers] for rec in recs], dtype=float)
        marked += plot_band(
          ax, range(1, len(layers) + 1), m, style(sweep.conditions.index(c)), c, log
        )
      if log:
        ax.set_yscale("log")
      state = "at initialisation" if pick == 0 else "at the last logged step"
      steps = ", ".join(str(s) for s in sorted(where))
      ax.set(xlabel="layer (1 = input side)", title=f"{title}\n{state} (step {steps})")
      ax.xaxis.get_major_locator().set_params(integer=True)
      ax.grid(alpha=0.3, which="both")
      _zero_note(ax, marked)
  axes[0][0].set_ylabel(ylabel)
  axes[1][0].set_ylabel(ylabel)
  _legend(fig, sweep)
  return _save(fig, out / f"{key}_by_layer.png")


def _errorbar(ax, x, values: list[float], sty: dict, **kw) -> float:
  """Mean with its 95% t-interval (no bar below two values); returns the mean."""
  s = _summary(values)
  if math.isfinite(s["mean"]):
    err = _yerr(s["mean"], s["ci_low"], s["ci_high"])
    ax.errorbar(x, s["mean"], yerr=err, color=sty["color"], marker=sty["marker"], capsize=3, **kw)
  return s["mean"]


def rate_response(sweep: stats.Sweep, out: Path) -> Path:
  """A `select` design: validation accuracy against the chosen field per
  group (the choice circled), and each group's paired difference to the
  baseline at its own choice next to the shared value."""
  sel = designs.select(sweep, sweep.design["select"])
  fig, (ax, ax_d) = plt.subplots(1, 2, figsize=(13, 4.4), layout="constrained")
  group_conds, group = (
    designs.groups(sweep, sel.group_field),
    designs.group_of(sweep, sel.group_field),
  )
  numeric = all(
    isinstance(designs.field_value(sweep, c, sel.choose_field), (int, float))
    for conds in group_conds.values()
    for c in conds
  )
  for i, (g, conds) in enumerate(group_conds.items()):
    sty, xs, means = style(i), [], []
    for c in conds:
      runs, common = sweep.ok_runs(c), sel.seeds.get(g)  # the seeds the choice compares
      vals = [runs[s].val_accuracy for s in (common or runs) if runs[s].val_accuracy is not None]
      if not vals:
        continue
      x = designs.field_value(sweep, c, sel.choose_field)
      x = x if numeric else str(x)
      mean = _errorbar(ax, x, vals, {**sty, "marker": None})
      xs.append(x)
      means.append(mean)
      if sel.chosen.get(g) == c:
        ax.plot(x, mean, "o", ms=11, mfc="none", mec=sty["color"], mew=1.6)
    if xs:
      ax.plot(xs, means, label=str(g), ms=4, lw=1.3, **sty)
  if numeric:
    ax.set_xscale("log")
    ticks = sorted({designs.field_value(sweep, c, sel.choose_field) for c in sweep.conditions})
    ax.set_xticks(ticks, [format_level(t) for t in ticks])
    ax.minorticks_off()
  ax.set(
    xlabel=sel.choose_field,
    ylabel="validation accuracy",
    title="validation accuracy on shared seeds, mean ± 95% CI (circled: chosen)",
  )
  ax.grid(alpha=0.3)
  ax.legend(fontsize=7, frameon=False)
  labels = []
  for i, (fam, dx, name) in enumerate(
    (
      (sel.at_chosen, -0.15, f"each at its own {sel.choose_field}"),
      (sel.at_shared, 0.15, f"both at the shared {format_level(sel.shared)}"),
    )
  ):
    for j, c in enumerate(fam.values()):
      g = group[c.condition]
      if g not in labels:
        labels.append(g)
      k = labels.index(g)
      ax_d.errorbar(
        k + dx, c.mean_diff, yerr=_yerr(c.mean_diff, c.ci_low, c.ci_high),
        fmt="o" if i == 0 else "s", color="k" if i == 0 else "0.55", capsize=3,
        label=name if j == 0 else None,
      )  # fmt: skip
  ax_d.axhline(0, color="0.4", lw=0.8)
  ax_d.set_xticks(range(len(labels)), [str(g) for g in labels], rotation=45, ha="right")
  ax_d.set(
    ylabel=f"Δ test accuracy vs {sel.baseline}",
    title=f"paired difference to {sel.baseline}, mean ± 95% CI",
    xlim=(-0.6, max(len(labels), 1) - 0.4),
  )
  ax_d.grid(alpha=0.3, axis="y")
  if labels:
    ax_d.legend(fontsize=8, frameon=False)
  return _save(fig, out / "design_selection.png")


def interaction_plot(sweep: stats.Sweep, out: Path) -> Path:
  """A `factorial` design: per group, test accuracy over the first factor's
  levels, one line per level of the second (mean ± 95% CI over the seeds that
  finished all four cells, the seeds the contrasts use)."""
  fac = designs.factorial(sweep, sweep.design["factorial"])
  f1, f2 = fac.factors
  cells = defaultdict(dict)  # group -> (level1, level2) -> condition
  for g, conds in designs.groups(sweep, sweep.design["factorial"]["group"]).items():
    for c in conds:
      cells[g][designs.field_value(sweep, c, f1), designs.field_value(sweep, c, f2)] = c
  acc = sweep.accuracies()
  fig, axes = plt.subplots(1, len(fac.levels), figsize=(2.6 * len(fac.levels) + 1.5, 3.6),
                           sharey=True, squeeze=False, layout="constrained")  # fmt: skip
  for ax, (g, (first, second)) in zip(axes[0], fac.levels.items()):
    seeds = fac.seeds.get(g, [])
    for j, b in enumerate(second):
      sty = {**style(j), "color": ("k", "tab:orange")[j % 2]}
      xs = [i + 0.04 * (j - 0.5) for i in range(len(first))]
      values = [[acc[cells[g][a, b]][s] for s in seeds] for a in first]
      means = [_errorbar(ax, x, v, sty, ms=4) for x, v in zip(xs, values)]
      ax.plot(xs, means, color=sty["color"], linestyle=sty["linestyle"], lw=1.2, label=str(b))
    ax.set_xticks(range(len(first)), [str(a) for a in first])
    ax.set(title=f"{g} ({len(seeds)} seeds)", xlabel=f1)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(title=f2, fontsize=7, title_fontsize=7, frameon=False)
  axes[0][0].set_ylabel("test accuracy (mean ± 95% CI)")
  a, b = f1.split(".")[-1], f2.split(".")[-1]
  fig.suptitle(
    f"{a} × {b}: a line's slope is the {a} effect at one {b}; the main effect is the mean\n"
    "slope, the interaction the difference of the slopes (parallel lines: none)",
    fontsize=9,
  )
  return _save(fig, out / "design_interaction.png")


def figures(sweep: stats.Sweep, rows: list[dict], out: Path) -> list[Path]:
  paths = [learning_curves(sweep, out)]
  if any(r["n"] >= 2 for r in rows):
    paths.append(accuracy_by_condition(sweep, rows, out))
  if "select" in sweep.design:
    paths.append(rate_response(sweep, out))
  if "factorial" in sweep.design:
    paths.append(interaction_plot(sweep, out))
  recs = [d for c in sweep.conditions for r in sweep.ok_runs(c).values() for d in diagnostics(r)]
  have = {k for d in recs for k in d}
  for key, label in (("grad_norm", "||dL/dW||"), ("backprop_norm", "||dL/dz|| (pre-activations)")):
    if key in have:
      paths.append(by_layer(sweep, out, key, label, log=True))
      paths.append(
        over_training(
          sweep, out, f"{key.split('_')[0]}_ratio_over_training",
          lambda r, key=key: _ratio(r[key]) if key in r else None,
          f"{label}: first layer / last layer", log=True,
        )
      )  # fmt: skip
  if "dead" in have:
    paths.append(by_layer(sweep, out, "dead", "dead-unit fraction", log=False))
  for key, label in FRACTIONS.items():
    if key in have:
      name = "dead_units" if key == "dead" else key
      paths.append(
        over_training(
          sweep, out, f"{name}_over_training",
          lambda r, key=key: _layer_mean(r[key]) if key in r else None,
          f"{label} (fraction, mean of layers)", log=False,
        )
      )  # fmt: skip
  return paths


# ----------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------


def load(paths: list[Path], baseline: str | None) -> tuple[stats.Sweep, Path]:
  """The sweep and the default output folder for the given paths."""
  root = paths[0]
  if len(paths) == 1 and root.is_dir() and not stats.is_condition(root):
    if (root / sweep_lib.PLAN_FILE).exists():
      sweep_lib.read_plan_file(root / sweep_lib.PLAN_FILE)  # an error naming the file
      return stats.read_sweep(root, baseline), root / "report"
    if any(stats.is_condition(p) for p in root.iterdir()):
      return stats.read_sweep(root, baseline), root / "report"
  sweep = stats.sweep_from_workdirs(paths, baseline)
  if len(paths) == 1:
    return sweep, paths[0] / "plots"
  return sweep, sweep.root / "report"


def report(sweep: stats.Sweep, out: Path, report_name: str = "report.md") -> tuple[str, list[Path]]:
  """Writes report.md, results.csv, runs.csv and the figures into `out`."""
  out.mkdir(parents=True, exist_ok=True)
  rows = condition_rows(sweep)
  all_runs = [r for c in sweep.conditions for r in sweep.runs[c].values()]
  files = [
    write_csv(out / "results.csv", rows),
    write_csv(out / "runs.csv", [run_row(r) for r in all_runs]),
  ]
  pngs = figures(sweep, rows, out) if any(r["n"] for r in rows) else []
  title = f"# {sweep.root.name}" + (f" ({sweep.config})" if sweep.config else "")
  parts = [title, "", "## Accuracy", "", accuracy_table(rows, sweep.baseline), ""]
  parts += [x for x in [family_line(sweep, rows)] if x] + [""]
  parts += [f"- {x}" for x in chance_lines(rows)] + ([""] if chance_lines(rows) else [])
  parts += design_sections(sweep)
  if any(r["n"] for r in rows):
    parts += ["## Setup and diagnostics", "", setup_table(sweep, rows), ""]
    parts += ["## Eval accuracy per epoch (mean over seeds)", "", epoch_table(sweep), ""]
  parts += left_out(sweep)
  parts += ["## Notes", ""] + [f"- {n}" for n in notes(sweep, rows)] + [""]
  parts += [f"![{p.stem}]({p.name})" for p in pngs] + [""]
  if all(len(sweep.runs[c]) == 1 for c in sweep.conditions):
    for run in all_runs:
      if run.records:
        parts += [f"## {run.condition}", "", run_epoch_table(run), ""]
  text = "\n".join(parts)
  (out / report_name).write_text(text)
  return text, files + [out / report_name] + pngs


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument(
    "paths", nargs="+", type=Path, help="a sweep folder, or run/condition folders"
  )
  parser.add_argument("--out", type=Path, default=None, help="folder for report.md, CSVs and PNGs")
  parser.add_argument(
    "--baseline",
    default=None,
    help="condition to compare against (default: sweep.json's, else relu)",
  )
  args = parser.parse_args(argv)
  try:
    sweep, out = load(args.paths, args.baseline)
  except (ValueError, OSError) as e:  # SweepError is a ValueError
    print(f"error: {e}", file=sys.stderr)
    return 1
  name = "report.md"
  if args.out is not None:
    out, name = (args.out.parent, args.out.name) if args.out.suffix == ".md" else (args.out, name)
  text, files = report(sweep, out, name)
  print(text)
  bad = len(sweep.bad_runs())
  print(
    f"\nWrote {len(files)} files to {out}"
    + (f"; {bad} run(s) left out, listed above." if bad else "."),
    file=sys.stderr,
  )
  return 0


def run() -> None:
  """The console script's entry point."""
  console(main)


if __name__ == "__main__":
  run()
