r"""Writes docs/findings.md (and README's results table) from committed metrics.

  python scripts/findings.py --runs=docs/runs --out=docs/findings.md --readme=README.md

Every number comes from the metrics.jsonl files under --runs (one folder per
study, one seed_<s>/ folder per run, as `scripts/sweep.py` writes them) and
from docs/runs/born_dead/born_dead.json; the statistics are `actlab.stats`
(scipy.stats underneath). Rerunning it after more seeds land updates every
table, interval and p-value, and every sentence that depends on them.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path

import numpy as np
from scipy import stats as sps

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from actlab import stats  # noqa: E402

ALPHA = 0.05


def fmt_p(p: float) -> str:
  if not math.isfinite(p):
    return "–"
  return f"{p:.2g}" if p >= 1e-3 else f"{p:.1e}"


def ci(s: stats.Summary, digits: int = 4) -> str:
  return f"{s.mean:.{digits}f} ± {s.half_width:.{digits}f}"


def seconds(sweep: stats.Sweep) -> float:
  total = 0.0
  for c in sweep.conditions:
    for r in sweep.ok_runs(c).values():
      total += sum(x.get("seconds", 0.0) for x in r.split("train"))
  return total


def epochs_of(sweep: stats.Sweep) -> int:
  return max((r.final_epoch or 0) for c in sweep.conditions for r in sweep.ok_runs(c).values())


def seeds_of(sweep: stats.Sweep) -> list[int]:
  return sorted({s for c in sweep.conditions for s in sweep.ok_runs(c)})


# ----------------------------------------------------------------------------
# Accuracy tables
# ----------------------------------------------------------------------------


def accuracy_table(sweep: stats.Sweep) -> tuple[str, dict[str, stats.Summary], dict]:
  acc = sweep.accuracies()
  summaries = {c: stats.summarize(list(v.values())) for c, v in acc.items() if len(v) >= 2}
  comps = stats.compare_to_baseline(acc, sweep.baseline) if sweep.baseline in summaries else {}
  val = {c: stats.summarize([r.val_accuracy for r in sweep.ok_runs(c).values()]) for c in summaries}
  rows = [
    "| activation | seeds | test acc (val-selected epoch), mean ± 95% CI | val acc |"
    f" Δ vs {sweep.baseline} [95% CI] | paired t p | Holm p | Wilcoxon p | d_z |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
  ]
  order = sorted(summaries, key=lambda c: -summaries[c].mean)
  for c in order:
    s, k = summaries[c], comps.get(c)
    delta = f"{k.mean_diff:+.4f} [{k.ci_low:+.4f}, {k.ci_high:+.4f}]" if k else "(baseline)"
    tail = (
      f"{fmt_p(k.t_p)} | {fmt_p(k.t_p_holm)} | {fmt_p(k.wilcoxon_p)} | {k.d_z:+.1f}"
      if k
      else "– | – | – | –"
    )
    rows.append(f"| {c} | {s.n} | {ci(s)} | {val[c].mean:.4f} | {delta} | {tail} |")
  return "\n".join(rows), summaries, comps


def verdict(k: stats.Comparison) -> str:
  if k.t_p_holm < ALPHA:
    return "**different** (Holm p < 0.05)"
  return "no difference detectable at these seeds"


def ranking(summaries: dict[str, stats.Summary]) -> list[str]:
  return sorted(summaries, key=lambda c: -summaries[c].mean)


# ----------------------------------------------------------------------------
# Sections
# ----------------------------------------------------------------------------


def headline(runs: Path) -> tuple[str, dict]:
  sweep = stats.read_sweep(runs / "comparison")
  table, summ, comps = accuracy_table(sweep)
  seeds, epochs = seeds_of(sweep), epochs_of(sweep)
  better = [c for c, k in comps.items() if k.t_p_holm < ALPHA and k.mean_diff > 0]
  worse = [c for c, k in comps.items() if k.t_p_holm < ALPHA and k.mean_diff < 0]
  tied = [c for c, k in comps.items() if k.t_p_holm >= ALPHA]
  sd_relu = summ["relu"].sd if "relu" in summ else math.nan
  text = f"""## 1. Ten activations in the tutorial's LeNet5 (`activation_comparison.py`)

```bash
python scripts/sweep.py --config=experiments/configs/activation_comparison.py:epochs={epochs} --seeds={len(seeds)} --workers=auto --workdir=/tmp/studies/comparison --config.data.data_dir=/tmp/tfds_real --config.data.download=False
python scripts/report.py /tmp/studies/comparison
```

The tutorial's protocol (raw 0–255 pixels, Glorot uniform, Adam 1e-3,
batch 256) on the validation protocol: trained on `train[:45000]`, the epoch
selected on `train[45000:]`, the test split evaluated once at that epoch.
**{epochs} epochs, not the tutorial's 10**: {len(summ)} activations × {len(seeds)} seeds
took {seconds(sweep) / 3600:.1f} CPU-worker hours of training on the 2-core
machine, and 10 epochs did not fit. Seeds {seeds}; the same seed gives every
activation the same initialisation stream and data order, so differences are
paired by seed.

{table}

Δ is the paired mean difference to relu with its 95% t-interval; p-values
are the paired t-test, Holm-adjusted over the {len(comps)} comparisons, and the
Wilcoxon signed-rank test (with {len(seeds)} seeds its smallest possible two-sided p
is {2 / 2 ** len(seeds):.4f}, so it cannot reach 0.05; it is shown as a check on the
direction, not as the test). d_z is the mean difference over the SD of the
differences. relu's seed-to-seed SD is {sd_relu:.4f}.

What the numbers say:

- Better than relu (Holm p < 0.05): {", ".join(better) or "none"}.
- Worse than relu (Holm p < 0.05): {", ".join(worse) or "none"}.
- Not distinguishable from relu at {len(seeds)} seeds: {", ".join(tied) or "none"}.
"""
  return text, {"summaries": summ, "comps": comps, "seeds": seeds, "epochs": epochs, "sweep": sweep}


def eval_at_epoch(sweep: stats.Sweep, epoch: int) -> dict[str, dict[int, float]]:
  out = {}
  for c in sweep.conditions:
    vals = {}
    for s, r in sweep.ok_runs(c).items():
      e = r.by_epoch("eval").get(epoch)
      if e is not None:
        vals[s] = float(e["accuracy"])
    out[c] = vals
  return out


def confound(runs: Path, head: dict) -> str:
  sweep = stats.read_sweep(runs / "confound")
  table, summ, comps = accuracy_table(sweep)
  seeds, epochs = seeds_of(sweep), epochs_of(sweep)
  # Like for like: validation accuracy after the same number of epochs in both sweeps.
  raw = eval_at_epoch(head["sweep"], epochs)
  fixed = eval_at_epoch(sweep, epochs)
  rows = [
    f"| activation | initialiser | val acc, tutorial setup (epoch {epochs}) | val acc, standardised + own init |"
    " Δ [95% CI] | paired t p | Holm p |",
    "|---|---|---:|---:|---:|---:|---:|",
  ]
  conds = [c for c in sweep.conditions if len(fixed.get(c, {})) >= 2 and len(raw.get(c, {})) >= 2]
  diffs = {}
  for c in conds:
    diffs[c] = stats.paired_comparison(fixed[c], raw[c], c, c + " (tutorial)", allow_unpaired=True)
  holm = dict(zip(diffs, stats.holm([d.t_p for d in diffs.values()])))
  for c in conds:
    a, b, d = (
      stats.summarize(list(raw[c].values())),
      stats.summarize(list(fixed[c].values())),
      diffs[c],
    )
    init = sweep.fields.get(c, {}).get("model.kernel_init", "?")
    rows.append(
      f"| {c} | {init} | {ci(a)} | {ci(b)} | {d.mean_diff:+.4f} [{d.ci_low:+.4f}, {d.ci_high:+.4f}]"
      f" | {fmt_p(d.t_p)} | {fmt_p(holm[c])} |"
    )
  rank_raw = sorted(conds, key=lambda c: -np.mean(list(raw[c].values())))
  rank_fixed = sorted(conds, key=lambda c: -np.mean(list(fixed[c].values())))
  tau = sps.kendalltau([rank_raw.index(c) for c in conds], [rank_fixed.index(c) for c in conds])
  helped = [c for c in conds if holm[c] < ALPHA and diffs[c].mean_diff > 0]
  hurt = [c for c in conds if holm[c] < ALPHA and diffs[c].mean_diff < 0]
  return f"""## 2. The same comparison without its confounds (`confound_check.py`)

```bash
python scripts/sweep.py --config=experiments/configs/confound_check.py:epochs={epochs} --seeds={len(seeds)} --workers=auto --workdir=/tmp/studies/confound --config.data.data_dir=/tmp/tfds_real --config.data.download=False
python scripts/report.py /tmp/studies/confound
```

Raw pixels put bounded activations in saturation from step 0, and Glorot
initialisation is derived for tanh, not for the ReLU family. Here the inputs
are standardised per channel and each activation gets its own initialiser:
He normal for relu, elu and gelu (He et al. 2015), LeCun normal for selu
(Klambauer et al. 2017), Glorot uniform for tanh and sigmoid. Validation
protocol as above, **{epochs} epochs** (CPU budget), seeds {seeds}, {seconds(sweep) / 3600:.1f}
CPU-worker hours.

{table}

Each activation against itself in the tutorial's setup, same seeds, both
read as validation accuracy after epoch {epochs} (the headline sweep's epoch-{epochs}
evaluation), paired by seed, Holm over the {len(conds)} activations:

{chr(10).join(rows)}

- Ranking in the tutorial's setup: {" > ".join(rank_raw)}; with the confounds
  removed: {" > ".join(rank_fixed)} (Kendall τ = {tau.statistic:.2f}).
- Helped by standardised inputs and their own initialiser (Holm p < 0.05):
  {", ".join(helped) or "none"}; hurt: {", ".join(hurt) or "none"}.
"""


def _log10_ratio(run: stats.Run, key: str, step: int | None = 0) -> float | None:
  diags = run.split("diagnostics")
  if not diags:
    return None
  rec = diags[0] if step == 0 else diags[-1]
  vals = rec.get(key)
  if not vals:
    return None
  layers = sorted(vals)
  first, last = float(vals[layers[0]]), float(vals[layers[-1]])
  if first <= 0 or last <= 0:
    return -math.inf
  return math.log10(first / last)


def vanishing(runs: Path) -> str:
  sweep = stats.read_sweep(runs / "vanishing", baseline="relu_d10")
  seeds, epochs = seeds_of(sweep), epochs_of(sweep)
  rows = [
    "| network | seeds | log10 ‖∂L/∂z‖ first/last hidden layer at init | at the last step |"
    " log10 ‖∂L/∂W‖ first/last at init | val acc after training |",
    "|---|---:|---:|---:|---:|---:|",
  ]
  for c in sweep.conditions:
    ok = sweep.ok_runs(c)
    if len(ok) < 2:
      continue
    cols = []
    for key, step in (("backprop_norm", 0), ("backprop_norm", None), ("grad_norm", 0)):
      v = [_log10_ratio(r, key, step) for r in ok.values()]
      v = [x for x in v if x is not None]
      if not v:
        cols.append("–")
      elif any(math.isinf(x) for x in v):
        cols.append(f"underflow in {sum(math.isinf(x) for x in v)} of {len(v)}")
      else:
        s = stats.summarize(v)
        cols.append(f"{s.mean:+.2f} ± {s.half_width:.2f}")
    acc = stats.summarize([r.val_accuracy for r in ok.values()])
    rows.append(f"| {c} | {len(ok)} | {' | '.join(cols)} | {ci(acc)} |")
  contrasts = _he_vs_glorot(sweep)
  return f"""## 3. Vanishing gradients by depth and initialiser (`vanishing_gradients.py`)

```bash
python scripts/sweep.py --config=experiments/configs/vanishing_gradients.py:epochs={epochs} --seeds={len(seeds)} --workers=auto --workdir=/tmp/studies/vanishing --config.data.data_dir=/tmp/tfds_real --config.data.download=False --only=sigmoid_d10,tanh_d10,relu_d10,relu_he_d10,sigmoid_d30,tanh_d30,relu_d30,relu_he_d30
python scripts/report.py /tmp/studies/vanishing
```

MLPs of 10 and 30 hidden layers of 128 units, standardised inputs, Adam
1e-3, {epochs} epoch(s) (CPU budget), seeds {seeds}, {seconds(sweep) / 3600:.1f}
CPU-worker hours. ‖∂L/∂z‖ is the norm of the
loss gradient with respect to a layer's pre-activations on one training
batch (the backward signal alone); ‖∂L/∂W‖ mixes it with the layer's input.
Values are log10 of first-layer over last-hidden-layer norm (0 = no
vanishing; −3 = a thousandfold smaller), mean ± 95% t-interval over seeds.

{chr(10).join(rows)}

He normal against Glorot uniform for the ReLU MLPs, paired by seed, Holm over
the {len(contrasts)} comparisons:

| depth | measure | He − Glorot [95% CI] | paired t p | Holm p |
|---:|---|---:|---:|---:|
{chr(10).join(contrasts)}
"""


def _he_vs_glorot(sweep: stats.Sweep) -> list[str]:
  """Paired He - Glorot differences of the ReLU MLPs, per depth, Holm-adjusted."""
  measures = {
    "log10 ‖∂L/∂z‖ first/last at init": lambda r: _log10_ratio(r, "backprop_norm", 0),
    "val acc after training": lambda r: r.val_accuracy,
  }
  found = []
  for c in sweep.conditions:
    depth = c.removeprefix("relu_he_d")
    if depth == c or f"relu_d{depth}" not in sweep.conditions:
      continue
    he, glorot = sweep.ok_runs(c), sweep.ok_runs(f"relu_d{depth}")
    for label, value in measures.items():
      a = {s: value(r) for s, r in he.items()}
      b = {s: value(r) for s, r in glorot.items()}
      found.append((int(depth), label, stats.paired_comparison(a, b, "he", "glorot")))
  adjusted = stats.holm([k.t_p for _, _, k in found]) if found else []
  return [
    f"| {d} | {label} | {k.mean_diff:+.3f} [{k.ci_low:+.3f}, {k.ci_high:+.3f}]"
    f" | {fmt_p(k.t_p)} | {fmt_p(p)} |"
    for (d, label, k), p in zip(found, adjusted)
  ]


def dying(runs: Path, born: dict) -> str:
  sweep = stats.read_sweep(runs / "dying", baseline="relu_lr0.001")
  seeds, epochs = seeds_of(sweep), epochs_of(sweep)

  def end_mean(r: stats.Run, key: str) -> float | None:
    d = r.split("diagnostics")
    vals = d[-1].get(key) if d else None
    return float(np.mean(list(vals.values()))) if vals else None

  rows = [
    "| network | seeds | dead units at the last step | near-dead | val acc |",
    "|---|---:|---:|---:|---:|",
  ]
  dead = {}
  for c in sweep.conditions:
    ok = sweep.ok_runs(c)
    if len(ok) < 2:
      continue
    cols = []
    for key in ("dead", "near_dead"):
      v = {s: end_mean(r, key) for s, r in ok.items()}
      v = {s: x for s, x in v.items() if x is not None}
      if key == "dead":
        dead[c] = v
      if v:
        b = stats.bootstrap_ci(list(v.values()))
        cols.append(f"{np.mean(list(v.values())):.3f} [{b[0]:.3f}, {b[1]:.3f}]")
      else:
        cols.append("–")
    acc = stats.summarize([r.val_accuracy for r in ok.values()])
    rows.append(f"| {c} | {len(ok)} | {' | '.join(cols)} | {ci(acc)} |")
  contrast = ""
  if "relu_lr0.01" in dead and "relu_lr0.001" in dead:
    k = stats.paired_comparison(dead["relu_lr0.01"], dead["relu_lr0.001"], "lr 1e-2", "lr 1e-3")
    contrast = (
      f"ReLU at lr 1e-2 minus lr 1e-3, paired by seed: {k.mean_diff:+.3f}"
      f" [{k.ci_low:+.3f}, {k.ci_high:+.3f}] of units dead, paired t p = {fmt_p(k.t_p)}."
    )
  born_rows = [
    "| init | width | " + " | ".join(f"depth {d}" for d in (2, 5, 10, 20, 50)) + " |",
    "|---|---:|" + "---:|" * 5,
  ]
  table = {(r["init"], r["width"], r["depth"]): r for r in born["born_dead"]}
  for init in ("he_normal", "glorot_uniform"):
    for w in (2, 3, 4, 8, 16):
      cells = []
      for d in (2, 5, 10, 20, 50):
        r = table.get((init, w, d))
        cells.append(f"{r['born_dead']:.3f}" if r else "–")
      born_rows.append(f"| {init} | {w} | " + " | ".join(cells) + " |")
  mlp_rows = [
    "| inputs | init | " + " | ".join(f"depth {d}" for d in (5, 10, 20, 30)) + " |",
    "|---|---|" + "---:|" * 4,
  ]
  by = {(r["scaling"], r["init"], r["depth"]): r for r in born.get("mlp_dead_at_init", [])}
  for scaling in ("raw", "standardize"):
    for init in ("he_normal", "glorot_uniform"):
      cells = []
      for d in (5, 10, 20, 30):
        r = by.get((scaling, init, d))
        cells.append(f"{r['mean']:.3f} [{r['ci'][0]:.3f}, {r['ci'][1]:.3f}]" if r else "–")
      mlp_rows.append(f"| {scaling} | {init} | " + " | ".join(cells) + " |")
  trials = born["born_dead"][0]["trials"]
  return f"""## 4. Dying ReLU (`dying_relu.py`, `scripts/born_dead.py`)

### Born dead: a deep, narrow ReLU network is constant from the start

```bash
{born["command"]}
```

Lu et al. (2019) prove that a ReLU network with symmetric random weights is
*born dead* (a constant function at initialisation) with probability → 1 as
depth grows at fixed width. With one input and zero biases the check is
exact (a ReLU network is then dead iff it is dead at x = +1 and x = −1);
{trials} initialisations per cell ({born.get("seconds", 0):.0f} s for everything on the CPU):

{chr(10).join(born_rows)}

The probability grows with depth and falls steeply with width, as Lu et al.
show, and it is the same for He and Glorot: with zero biases the sign
pattern of a ReLU network does not depend on the weights' scale. At the
width of actlab's MLP (128) it is negligible, but individual units are dead
from the start, more the deeper the network (fraction of hidden units that
are ≤ 0 on all of 1,000 CIFAR-10 training images, mean [95% CI] over 5
seeds):

{chr(10).join(mlp_rows)}

So the dead units a deep ReLU MLP has at step 0 come with depth, not with
the initialiser's scale; what the initialiser changes is the size of the
signal (section 3).

### Learning rate

```bash
python scripts/sweep.py --config=experiments/configs/dying_relu.py:epochs={epochs} --seeds={len(seeds)} --workers=auto --workdir=/tmp/studies/dying --config.data.data_dir=/tmp/tfds_real --config.data.download=False --only=relu_lr0.001,relu_lr0.01,leaky_relu_lr0.01,elu_lr0.01
python scripts/report.py /tmp/studies/dying --baseline=relu_lr0.001
```

MLP of 5 hidden layers of 256 units, He normal, standardised inputs,
{epochs} epochs, seeds {seeds}, {seconds(sweep) / 3600:.1f} CPU-worker hours. Dead: |f′| ≤ 0.01·max|f′| for every example of a
training batch; near-dead: mean |f′| over the batch below that; mean over
layers, with a bootstrap 95% interval over seeds.

{chr(10).join(rows)}

{contrast}
"""


def readme_table(head: dict) -> str:
  summ, comps = head["summaries"], head["comps"]
  lines = [
    f"LeNet5 on CIFAR-10, tutorial setup, {head['epochs']} epochs, {len(head['seeds'])} seeds,"
    " test accuracy at the validation-selected epoch (mean ± 95% CI), paired difference to relu"
    " with Holm-adjusted p:",
    "",
    "| activation | test acc | Δ vs relu | Holm p |",
    "|---|---:|---:|---:|",
  ]
  for c in ranking(summ):
    k = comps.get(c)
    lines.append(
      f"| {c} | {ci(summ[c])} | "
      + (f"{k.mean_diff:+.4f} | {fmt_p(k.t_p_holm)} |" if k else "– | – |")
    )
  return "\n".join(lines)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--runs", type=Path, default=Path("docs/runs"))
  parser.add_argument("--out", type=Path, default=Path("docs/findings.md"))
  parser.add_argument("--template", type=Path, default=Path("docs/findings_template.md"))
  parser.add_argument(
    "--readme", type=Path, default=None, help="README whose results block to update"
  )
  args = parser.parse_args(argv)
  born = json.loads((args.runs / "born_dead" / "born_dead.json").read_text())
  head_text, head = headline(args.runs)
  sections = {
    "HEADLINE": head_text,
    "CONFOUND": confound(args.runs, head) if (args.runs / "confound").exists() else "",
    "VANISHING": vanishing(args.runs) if (args.runs / "vanishing").exists() else "",
    "DYING": dying(args.runs, born) if (args.runs / "dying").exists() else "",
  }
  text = args.template.read_text()
  for key, value in sections.items():
    text = text.replace("{{" + key + "}}", value.strip())
  for key, value in _numbers(head).items():
    text = text.replace("{{" + key + "}}", value)
  left = re.findall(r"\{\{[A-Z_:.0-9a-z]+\}\}", text)
  if left:
    raise SystemExit(f"error: {args.template} has placeholders with no value: {sorted(set(left))}")
  args.out.write_text(text)
  print(f"wrote {args.out}")
  if args.readme:
    readme = args.readme.read_text()
    begin, end = "<!-- results:begin -->", "<!-- results:end -->"
    if begin not in readme or end not in readme:
      raise SystemExit(f"error: {args.readme} has no {begin} ... {end} block")
    head_part, rest = readme.split(begin, 1)
    _, tail = rest.split(end, 1)
    args.readme.write_text(head_part + begin + "\n" + readme_table(head) + "\n" + end + tail)
    print(f"updated {args.readme}")
  return 0


def _numbers(head: dict) -> dict[str, str]:
  """{{DIFF:cond}}, {{P:cond}} ... for the template's prose."""
  out = {}
  for c, s in head["summaries"].items():
    out[f"MEAN:{c}"] = ci(s)
  for c, k in head["comps"].items():
    out[f"DIFF:{c}"] = f"{k.mean_diff:+.4f} [{k.ci_low:+.4f}, {k.ci_high:+.4f}]"
    out[f"P:{c}"] = fmt_p(k.t_p)
    out[f"HOLM:{c}"] = fmt_p(k.t_p_holm)
    out[f"VERDICT:{c}"] = verdict(k)
  return out


if __name__ == "__main__":
  sys.exit(main())
