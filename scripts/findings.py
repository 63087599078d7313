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

from actlab import designs, inference, stats, theory  # noqa: E402
from actlab.cli import report  # noqa: E402

ALPHA = 0.05


def fmt_p(p: float) -> str:
  if not math.isfinite(p):
    return "–"
  return f"{p:.2g}" if p >= 1e-3 else f"{p:.1e}"


def ci(s: stats.Summary, digits: int = 4) -> str:
  return f"{s.mean:.{digits}f} ± {s.half_width:.{digits}f}"


def reused(sweep: stats.Sweep) -> dict[str, str]:
  """Run name -> the run of another study it was copied from (`actlab-sweep --reuse`)."""
  out = {}
  for c in sweep.conditions:
    for seed, r in sweep.ok_runs(c).items():
      done = Path(r.workdir) / "done.json"
      source = json.loads(done.read_text()).get("reused_from") if done.exists() else None
      if source:
        out[f"{c}/seed_{seed}"] = source
  return out


def seconds(sweep: stats.Sweep, copied: dict[str, str] | None = None) -> float:
  """Training time of the study's own runs (a copied run counts in its source
  study); `copied` is `reused(sweep)` where the caller has it already."""
  copied = reused(sweep) if copied is None else copied
  total = 0.0
  for c in sweep.conditions:
    for seed, r in sweep.ok_runs(c).items():
      if f"{c}/seed_{seed}" not in copied:
        total += sum(x.get("seconds", 0.0) for x in r.split("train"))
  return total


def reuse_sentence(copied: dict[str, str]) -> str:
  """Which runs (`reused`) are another study's, and on what grounds; empty when none are."""
  if not copied:
    return ""
  cells = sorted({name.split("/")[0] for name in copied})
  sources = sorted({source.split("/")[0] for source in copied.values()})
  return (
    f" {len(copied)} of these runs (the cells {', '.join(f'`{c}`' for c in cells)}) are the"
    f" {' and '.join(f'`{s}`' for s in sources)} study's runs at the same seeds: the same"
    " config field for field and the same commit, copied by `actlab-sweep --reuse` (each"
    " run's done.json names its source) and counted once in the hours above. Retrained by"
    " the study itself in the same worker setting, such a run gives the same records"
    " (checked for relu at seed 0: metrics identical apart from timings)."
  )


def epochs_of(sweep: stats.Sweep) -> int:
  return max((r.final_epoch or 0) for c in sweep.conditions for r in sweep.ok_runs(c).values())


def seeds_of(sweep: stats.Sweep) -> list[int]:
  return sorted({s for c in sweep.conditions for s in sweep.ok_runs(c)})


# ----------------------------------------------------------------------------
# One study: its table, the family it tests, convergence, progress
# ----------------------------------------------------------------------------


def progress(sweep: stats.Sweep) -> tuple[int, int]:
  """(finished runs, planned runs) from sweep.json's conditions and seeds."""
  plan = json.loads((sweep.root / "sweep.json").read_text())
  planned = len(plan.get("conditions", [])) * len(plan.get("seeds", []))
  done = sum(len(sweep.ok_runs(c)) for c in sweep.conditions)
  return done, planned


def complete_seeds(sweep: stats.Sweep, conditions: list[str] | None = None) -> list[int]:
  """Seeds every one of `conditions` (default: all) has finished."""
  conds = conditions or sweep.conditions
  sets = [set(sweep.ok_runs(c)) for c in conds]
  return sorted(set.intersection(*sets)) if sets else []


def study_table(sweep: stats.Sweep, pooled: list, study: str) -> tuple[str, list[dict]]:
  """actlab-report's accuracy table (same columns, same statistics) under a
  line naming the family; the family's p-values join the document's pool."""
  rows = sorted(report.condition_rows(sweep), key=lambda r: -r["mean"] if r["n"] else 1.0)
  text = [report.accuracy_table(rows, sweep.baseline), ""]
  line = report.family_line(sweep, rows)
  if line:
    text += [line, ""]
  text += [f"- {x}" for x in report.chance_lines(rows)]
  if not sweep.design:  # a design's confirmatory family is its own section
    for r in rows:
      if r["n_pairs"] and math.isfinite(r["t_p"]):
        pooled.append((study, f"{r['condition']} − {r['baseline']}", r["t_p"], r["t_p_holm"]))
  return "\n".join(text).strip(), rows


def convergence(sweep: stats.Sweep) -> tuple[str, dict]:
  """How many runs selected their last epoch, and what the last epoch added.

  A run that peaks on validation at its last epoch was still learning when
  it stopped: its accuracy measures speed at this budget, not what the
  activation reaches."""
  lines = [
    "| condition | runs | selected their last epoch | median val gain in the last epoch (points) |",
    "|---|---:|---:|---:|",
  ]
  total = last = 0
  gains = []
  for c in sweep.conditions:
    ok = list(sweep.ok_runs(c).values())
    if not ok:
      continue
    at_last = sum(r.selected_epoch == r.final_epoch for r in ok)
    g = []
    for r in ok:
      ev = r.by_epoch("eval")
      if r.final_epoch in ev and r.final_epoch - 1 in ev:
        g.append(100 * (ev[r.final_epoch]["accuracy"] - ev[r.final_epoch - 1]["accuracy"]))
    total, last, gains = total + len(ok), last + at_last, gains + g
    med = f"{np.median(g):+.2f}" if g else "–"
    lines.append(f"| {c} | {len(ok)} | {at_last} | {med} |")
  overall = {
    "runs": total,
    "at_last": last,
    "median_gain": float(np.median(gains)) if gains else math.nan,
  }
  return "\n".join(lines), overall


def convergence_sentence(overall: dict, epochs: int) -> str:
  share = overall["at_last"] / max(overall["runs"], 1)
  if share > 0.5:
    judged = (
      "most runs were still improving when they stopped: the accuracies measure how fast each"
      " activation learns at this budget, not what it reaches"
    )
  elif share < 0.5:
    judged = (
      "most runs peaked before their last epoch: the budget is long enough for the"
      " validation-selected accuracy to have levelled off"
    )
  else:
    judged = "half the runs were still improving when they stopped: too few to judge the budget"
  return (
    f"Convergence check: {overall['at_last']} of {overall['runs']} runs selected their last"
    f" (epoch {epochs}) on validation; the median change of validation accuracy over the last"
    f" epoch is {round(overall['median_gain'], 2) + 0.0:+.2f} points. So {judged}."
  )


def _val_matrix(sweep: stats.Sweep, conds: list[str], seeds: list[int]) -> np.ndarray:
  """Validation accuracy [condition, seed, epoch] (epochs 1..E, the runs' common length)."""
  epochs = min(max(sweep.ok_runs(c)[s].by_epoch("eval")) for c in conds for s in seeds)
  out = np.empty((len(conds), len(seeds), epochs))
  for i, c in enumerate(conds):
    for j, s in enumerate(seeds):
      ev = sweep.ok_runs(c)[s].by_epoch("eval")
      out[i, j] = [ev[e]["accuracy"] for e in range(1, epochs + 1)]
  return out


def _tau(a: np.ndarray, b: np.ndarray) -> float:
  return float(sps.kendalltau(a, b).statistic)


def _bootstrap_tau(statistic, *samples, seed: int = 0) -> tuple[float, float]:
  """Percentile 95% interval of a Kendall τ over seeds resampled with
  replacement (scipy.stats.bootstrap; each sample resampled on its own)."""
  res = sps.bootstrap(
    samples,
    statistic,
    n_resamples=2000,
    vectorized=False,
    paired=False,
    method="percentile",
    rng=np.random.default_rng(seed),
  )
  return float(res.confidence_interval.low), float(res.confidence_interval.high)


# Below this many seeds a bootstrap over seeds has too few distinct resamples
# (C(2n-1, n): 126 at n = 5) to give a τ interval worth printing.
TAU_INTERVAL_MIN_SEEDS = 10


def coarse(n: int) -> str:
  """A caveat for a bootstrap over few seeds: it has C(2n-1, n) distinct resamples."""
  if n >= TAU_INTERVAL_MIN_SEEDS:
    return ""
  return (
    f" With {n} seeds the bootstrap has only {math.comb(2 * n - 1, n)} distinct resamples,"
    " so bootstrap intervals over them are coarse and can sit off-centre."
  )


def rank_vs_budget(sweep: stats.Sweep) -> str:
  """Kendall τ between each epoch's ranking (mean validation accuracy over
  seeds) and the last epoch's, with a bootstrap interval over seeds."""
  conds = [c for c in sweep.conditions if sweep.ok_runs(c)]
  seeds = complete_seeds(sweep, conds)
  if len(seeds) < 3 or len(conds) < 3:
    return f"Rank against budget: needs ≥ 3 seeds finished by every condition; {len(seeds)} so far."
  v = _val_matrix(sweep, conds, seeds)
  epochs = v.shape[2]
  idx = np.arange(len(seeds))
  lines = [
    f"| epoch | Kendall τ with epoch {epochs}'s ranking | 95% bootstrap interval (seeds) |",
    "|---:|---:|---:|",
  ]
  for e in range(epochs - 1):
    tau = _tau(v[:, :, e].mean(1), v[:, :, -1].mean(1))
    lo, hi = _bootstrap_tau(
      lambda i, e=e: _tau(v[:, i, e].mean(1), v[:, i, -1].mean(1)), idx, seed=e
    )
    lines.append(f"| {e + 1} | {tau:+.2f} | [{lo:+.2f}, {hi:+.2f}] |")
  return (
    f"Rank against budget ({len(conds)} activations, seeds {seeds}): how well the ranking"
    f" after each epoch predicts the ranking after epoch {epochs}. The bootstrap resamples"
    " seeds (every activation keeps its pairing) and recomputes both rankings."
    + coarse(len(seeds))
    + "\n\n"
    + "\n".join(lines)
  )


def rank_agreement(a: stats.Sweep, b: stats.Sweep, label_a: str, label_b: str) -> str:
  """Kendall τ between two studies' rankings (mean test accuracy at the
  validation-selected epoch), seeds resampled within each study."""
  conds = [c for c in a.conditions if a.ok_runs(c) and c in b.conditions and b.ok_runs(c)]
  sa, sb = complete_seeds(a, conds), complete_seeds(b, conds)
  if len(conds) < 3 or len(sa) < 3 or len(sb) < 3:
    return (
      f"Rank agreement of {label_a} with {label_b}: needs ≥ 3 seeds finished by every"
      f" activation in both; {len(sa)} and {len(sb)} so far."
    )
  ma = np.array([[a.ok_runs(c)[s].accuracy for s in sa] for c in conds])
  mb = np.array([[b.ok_runs(c)[s].accuracy for s in sb] for c in conds])
  tau = _tau(ma.mean(1), mb.mean(1))
  lo, hi = _bootstrap_tau(
    lambda i, j: _tau(ma[:, i].mean(1), mb[:, j].mean(1)), np.arange(len(sa)), np.arange(len(sb))
  )
  order = lambda m: " > ".join(np.array(conds)[np.argsort(-m.mean(1))])  # noqa: E731
  return (
    f"Rank agreement of {label_a} ({len(sa)} seeds) with {label_b} ({len(sb)} seeds), over"
    f" {len(conds)} activations: Kendall τ = {tau:+.2f}, 95% bootstrap interval [{lo:+.2f},"
    f" {hi:+.2f}].{coarse(min(len(sa), len(sb)))}\n\n- {label_a}: {order(ma)}\n- {label_b}:"
    f" {order(mb)}"
  )


# The cells the learning-rate and factorial studies share with the proxy.
REUSE_PROXY = " --reuse=/tmp/studies/proxy"


def command(config: str, workdir: str, seeds: int | None = None, extra: str = "") -> str:
  seeds_flag = f" --seeds={seeds}" if seeds else ""
  return (
    "```bash\n"
    f"actlab-sweep --config=experiments/configs/{config}{seeds_flag} --workers=auto"
    f" --workdir=/tmp/studies/{workdir} --config.data.data_dir=/tmp/tfds_real"
    f" --config.data.download=False{extra}\n"
    f"actlab-report /tmp/studies/{workdir}\n```"
  )


def _status(sweep: stats.Sweep) -> str:
  done, planned = progress(sweep)
  if done >= planned:
    return f"All {planned} planned runs finished."
  return (
    f"**In progress: {done} of {planned} planned runs finished and committed**; the tables use"
    " the finished runs (paired comparisons use the seeds both sides have). Rerunning the"
    " command resumes the rest."
  )


# ----------------------------------------------------------------------------
# Sections
# ----------------------------------------------------------------------------


def budget10(runs: Path, pooled: list) -> tuple[str, dict]:
  sweep = stats.read_sweep(runs / "budget10")
  table, rows = study_table(sweep, pooled, "10 epochs")
  conv, overall = convergence(sweep)
  seeds, epochs = seeds_of(sweep), epochs_of(sweep)
  text = f"""## 1. The tutorial's budget: ten activations, 10 epochs (`activation_comparison.py`)

{command("activation_comparison.py", "budget10", 5)}

The tutorial's LeNet5 and protocol (raw 0–255 pixels, Glorot uniform, Adam
1e-3, batch 256, **10 epochs**) with each activation, on the validation
protocol: trained on `train[:45000]`, the epoch selected on
`train[45000:]`, the test split evaluated once at that epoch. Seeds
{seeds}; a seed gives every activation the same initialisation stream and
data order, so differences are paired. {seconds(sweep) / 3600:.1f} CPU-worker hours. {_status(sweep)}

{table}

{conv}

{convergence_sentence(overall, epochs)}

{rank_vs_budget(sweep)}
"""
  return text, {"sweep": sweep, "rows": rows, "overall": overall}


def proxy(runs: Path, pooled: list, others: dict) -> tuple[str, dict]:
  sweep = stats.read_sweep(runs / "proxy")
  table, rows = study_table(sweep, pooled, "proxy")
  conv, overall = convergence(sweep)
  seeds, epochs = seeds_of(sweep), epochs_of(sweep)
  compared = [r for r in rows if r["n_pairs"]]
  mdes = [r["mde_80"] for r in compared if math.isfinite(r["mde_80"])]
  sds = [r["diff_sd"] for r in compared if math.isfinite(r["diff_sd"])]
  resolved = [r["condition"] for r in compared if r["t_p_holm"] < ALPHA]
  equivalent = [r["condition"] for r in compared if r["verdict"].startswith("equivalent")]
  open_ = [r["condition"] for r in compared if r["verdict"] == "inconclusive"]
  n = max((r["n_pairs"] for r in compared), default=0)
  power = ""
  if mdes and sds:
    sd = float(np.median(sds))
    m = len(compared)
    need1 = inference.seeds_needed(0.01, sd, alpha=ALPHA / m)
    need05 = inference.seeds_needed(0.005, sd, alpha=ALPHA / m)
    power = (
      f"Power: with n = {n} pairs the median SD of the paired differences is {sd:.4f}, and the"
      f" minimal detectable effect at 80% power and Holm's first level (0.05/{m}) is"
      f" {np.median(mdes) * 100:.2f} points (median over the {m} comparisons; range"
      f" {min(mdes) * 100:.2f}–{max(mdes) * 100:.2f}). At that SD, 1 point needs {need1} seeds"
      f" and 0.5 points {need05} (`actlab.inference.seeds_needed`). Resolved at this power"
      f" (Holm p < 0.05): {', '.join(resolved) or 'none'}; equivalent to relu within"
      f" ±1 point: {', '.join(equivalent) or 'none'}; inconclusive: {', '.join(open_) or 'none'}."
    )
  agree = []
  if "budget10" in others:
    agree.append(rank_agreement(sweep, others["budget10"]["sweep"], "the proxy", "10 epochs"))
  if "short" in others:
    agree.append(rank_agreement(sweep, others["short"]["sweep"], "the proxy", "3 epochs"))
  text = f"""## 2. A powered proxy: 10,000 images, {epochs} epochs, {len(seeds)} seeds (`proxy_comparison.py`)

{command("proxy_comparison.py", "proxy")}

The same ten LeNet5s as section 1 on a budget that 20 seeds can afford:
trained on `train[:10000]` for {epochs} epochs (a sixth of the images the
tutorial's 10 epochs show), epoch selected on `train[45000:]`, test once.
Seeds {seeds}, {seconds(sweep) / 3600:.1f} CPU-worker hours. {_status(sweep)}

{table}

{power}

{conv}

{convergence_sentence(overall, epochs)}

{chr(10).join(chr(10) + a for a in agree).strip()}
"""
  return text, {"sweep": sweep, "rows": rows}


def short(runs: Path, pooled: list, others: dict) -> tuple[str, dict]:
  sweep = stats.read_sweep(runs / "comparison")
  table, rows = study_table(sweep, pooled, "3 epochs")
  conv, overall = convergence(sweep)
  seeds, epochs = seeds_of(sweep), epochs_of(sweep)
  agree = ""
  if "budget10" in others:
    agree = rank_agreement(sweep, others["budget10"]["sweep"], f"{epochs} epochs", "10 epochs")
  text = f"""## 3. Learning speed: the same comparison after {epochs} epochs (`activation_comparison.py:epochs={epochs}`)

{command(f"activation_comparison.py:epochs={epochs}", "comparison", len(seeds))}

The first version of this comparison: section 1's setup stopped after
{epochs} epochs, seeds {seeds}. It is kept because it answers another
question — which activation learns fastest in this network — and because
its convergence check shows why it cannot answer the first one.

{table}

{conv}

{convergence_sentence(overall, epochs)}

{agree}
"""
  return text, {"sweep": sweep, "rows": rows}


def _one_level_down(lines: list[str]) -> str:
  """actlab-report's design sections as subsections of this page's section."""
  return "\n".join("#" + x if x.startswith("## ") else x for x in lines)


DESIGN_MIN_SEEDS = 3


def design_ready(sweep: stats.Sweep) -> bool:
  """Whether every condition of a design study has DESIGN_MIN_SEEDS finished
  seeds: a rate chosen among the rates that happen to be finished, or a 2x2
  with an empty cell, would be a different analysis, not a partial one."""
  return len(complete_seeds(sweep)) >= DESIGN_MIN_SEEDS


def waiting(sweep: stats.Sweep) -> str:
  started = [c for c in sweep.conditions if sweep.ok_runs(c)]
  return (
    f"The design's tables appear once every condition has ≥ {DESIGN_MIN_SEEDS} finished"
    f" seeds; so far {len(complete_seeds(sweep))} seeds are finished in all"
    f" {len(sweep.conditions)} conditions, and {len(started)} conditions have a finished run."
  )


def by_verdict(items: list[tuple[str, stats.Comparison]]) -> str:
  """'higher for a (Δ ...), ...; equivalent ... for c; inconclusive for d', in points."""
  order = {"higher": 0, "lower": 1}
  groups: dict[str, list[str]] = {}
  for label, c in items:
    shown = str(label)
    if c.verdict in order:
      shown += f" ({c.mean_diff * 100:+.2f} [{c.ci_low * 100:+.2f}, {c.ci_high * 100:+.2f}])"
    groups.setdefault(c.verdict, []).append(shown)
  keys = sorted(groups, key=lambda v: (order.get(v, 2 if v.startswith("equivalent") else 3), v))
  return "; ".join(f"{v} for {', '.join(groups[v])}" for v in keys)


def select_summary(sweep: stats.Sweep, sel: designs.Selection) -> str:
  """Which rate each activation chose, and what the own-rate comparison says
  next to the shared-rate one."""
  group_of = designs.group_of(sweep, sel.group_field)
  level = report.format_level
  chosen = ", ".join(f"{g} {level(v)}" for g, v in sel.chosen_value.items())
  moved = [g for g, v in sel.chosen_value.items() if v != sel.shared]
  own = {group_of[c.condition]: c for c in sel.at_chosen.values()}
  shared = {group_of[c.condition]: c for c in sel.at_shared.values()}
  changed = [
    f"{g} ({shared[g].verdict} at {level(sel.shared)}, {own[g].verdict} at its own rate)"
    for g in own
    if g in shared and own[g].verdict != shared[g].verdict
  ]
  own_text = by_verdict(list(own.items())) or "no comparison with two or more paired seeds"
  shared_text = (
    by_verdict(list(shared.items())) or f"no comparison (no condition at {level(sel.shared)})"
  )
  return (
    f"Rates chosen on validation: {chosen} — {len(moved)} of {len(sel.chosen_value)}"
    f" activations away from the shared {level(sel.shared)}. Against {sel.baseline} at"
    f" its own rate (Δ in points, 95% t-interval; Holm over the {len(own)} comparisons):"
    f" {own_text}. At the shared rate: {shared_text}."
    + (
      f" The verdict changes with the rate for {'; '.join(changed)}."
      if changed
      else " No verdict changes between the two."
    )
  )


def factorial_summary(fac: designs.Factorial) -> str:
  """Each factor's effect and the interaction, by verdict, over the groups."""
  f1, f2 = fac.factors
  lines = []
  for name in (f1, f2, "interaction"):
    items = [(g, c) for (g, n), c in fac.contrasts.items() if n == name]
    if not items:
      continue
    if name == "interaction":
      what = f"The interaction (the {f2} effect with {f1} high minus with it low)"
    else:
      i = 0 if name == f1 else 1
      steps = sorted({" → ".join(map(str, fac.levels[g][i])) for g, _ in items})
      what = f"{name} ({'; '.join(steps)})"
    lines.append(f"- {what}: {by_verdict(items)}.")
  return "\n".join(lines)


def learning_rates(runs: Path, pooled: list) -> str:
  sweep = stats.read_sweep(runs / "learning_rates")
  seeds, ready, copied = seeds_of(sweep), design_ready(sweep), reused(sweep)
  sections = report.design_sections(sweep) if ready else [waiting(sweep)]
  spec = sweep.design.get("select") if sweep.design else None
  summary = ""
  if spec and ready:
    sel = designs.select(sweep, spec)
    summary = select_summary(sweep, sel) + "\n\n"
    for c in sel.at_chosen.values():
      pooled.append(("own learning rate", f"{c.condition} − {c.baseline}", c.t_p, c.t_p_holm))
  return f"""## 4. Each activation at its own learning rate (`learning_rates.py`)

{command("learning_rates.py", "learning_rates", 5, REUSE_PROXY)}

Section 2's proxy budget with Adam at 3e-4, 1e-3 and 3e-3 for each of eight
activations. The rate is chosen per activation by mean validation accuracy
(never the test split); the test accuracies at the chosen rates are then
compared with relu at its own chosen rate — the declared family — next to
the same comparison at the shared 1e-3. Seeds {seeds}, {seconds(sweep, copied) / 3600:.1f}
CPU-worker hours.{reuse_sentence(copied)} {_status(sweep)}

{summary}{_one_level_down(sections)}
"""


def factorial(runs: Path, pooled: list) -> str:
  sweep = stats.read_sweep(runs / "factorial")
  seeds, ready, copied = seeds_of(sweep), design_ready(sweep), reused(sweep)
  sections = report.design_sections(sweep) if ready else [waiting(sweep)]
  spec = sweep.design.get("factorial") if sweep.design else None
  summary = ""
  if spec and ready:
    fac = designs.factorial(sweep, spec)
    summary = factorial_summary(fac) + "\n\n"
    for (g, name), c in fac.contrasts.items():
      pooled.append(("factorial", f"{g}: {name}", c.t_p, c.t_p_holm))
  return f"""## 5. Input scaling × initialiser, per activation (`factorial_confound.py`)

{command("factorial_confound.py", "factorial", 5, REUSE_PROXY)}

The tutorial feeds raw 0–255 pixels to a Glorot-initialised network. Two
changes are often proposed at once — standardised inputs and each
activation's own initialiser (He normal for the ReLU family, LeCun normal
for selu) — and a comparison that makes both at once cannot say which one
helped. Here each is a factor of a 2×2, on the proxy budget of section 2,
for six activations including silu and mish; each factor's effect and the
interaction are estimated separately, paired by seed. Seeds {seeds},
{seconds(sweep, copied) / 3600:.1f} CPU-worker hours.{reuse_sentence(copied)} {_status(sweep)}

{summary}{_one_level_down(sections)}
"""


# Misra's Mish README, "Significance Level", sample size 23: SqueezeNet on
# CIFAR-10, 50 epochs, Adam 1e-3, batch 128, test accuracy (%) of 23 unpaired
# runs per activation, (mean, SD); its Leaky ReLU has slope 0.3 (ours 0.01).
MISH_README = {
  "mish": (87.48, 0.3967),
  "gelu": (87.37, 0.472),
  "silu": (87.32, 0.414),
  "leaky_relu": (86.85, 0.4569),
  "relu": (86.66, 0.584),
  "elu": (86.41, 0.3371),
  "prelu": (85.66, 2.2406),
  "selu": (83.91, 0.5995),
  "tanh": (83.15, 0.6887),
  "sigmoid": (74.82, 5.7662),
}
MISH_RUNS = 23

# Published claims "activation > relu" and where they were measured.
CLAIMS = [
  ("Clevert et al. 2016", "CIFAR-10/100 CNNs trained to convergence, 10 runs, Wilcoxon", "elu"),
  (
    "Ramachandran et al. 2017",
    "several architectures, median of 5 runs, one-sided paired sign test",
    "silu",
  ),
  (
    "Xu et al. 2015",
    "Network in Network on CIFAR-10/100, leaky slopes 1/100 and 1/5.5",
    "leaky_relu",
  ),
  ("Xu et al. 2015; He et al. 2015", "Network in Network on CIFAR-10/100; ImageNet CNNs", "prelu"),
]


def against_claim(row: dict) -> str:
  """What a row's verdict says about a published "condition > baseline"."""
  verdict = row["verdict"]
  if verdict == "higher":
    return "agrees"
  if verdict == "lower":
    return "contradicts (lower)"
  if verdict.startswith("equivalent"):
    return f"no advantage beyond ±{row['tost_margin'] * 100:g} point (equivalent)"
  d = row["diff_mean"]
  if d == 0:
    return "inconclusive at this power (estimate exactly 0)"
  return f"inconclusive at this power (estimate on {'the claim' if d > 0 else 'the opposite'} side)"


def _points(row: dict) -> str:
  return (
    f"{row['diff_mean'] * 100:+.2f} [{row['diff_ci_low'] * 100:+.2f},"
    f" {row['diff_ci_high'] * 100:+.2f}]"
  )


def gap_test(row: dict, condition: str, reference: str = "relu") -> tuple[float, float]:
  """Our paired gap (points) minus the README's unpaired one, and the
  two-sided p of that difference: both standard errors combined, degrees of
  freedom by Welch–Satterthwaite."""
  (m_c, sd_c), (m_r, sd_r) = MISH_README[condition], MISH_README[reference]
  var_c, var_r = sd_c**2 / MISH_RUNS, sd_r**2 / MISH_RUNS
  var_pub = var_c + var_r
  df_pub = var_pub**2 / ((var_c**2 + var_r**2) / (MISH_RUNS - 1))
  n = row["n_pairs"]
  var_ours = (row["diff_sd"] * 100) ** 2 / n
  diff = row["diff_mean"] * 100 - (m_c - m_r)
  se = math.sqrt(var_ours + var_pub)
  df = (var_ours + var_pub) ** 2 / (var_ours**2 / (n - 1) + var_pub**2 / df_pub)
  return diff, float(2 * sps.t.sf(abs(diff) / se, df))


def published_rank(sweep: stats.Sweep, label: str) -> str:
  """Kendall τ of a study's mean ranking with the README's; with enough seeds,
  a bootstrap interval that resamples our seeds and draws the published means
  from their standard errors (the README's top three are within its noise)."""
  conds = [c for c in sweep.conditions if c in MISH_README and sweep.ok_runs(c)]
  seeds = complete_seeds(sweep, conds)
  if len(conds) < 3 or len(seeds) < 3:
    return f"- {label}: needs ≥ 3 seeds finished by every activation; {len(seeds)} so far."
  m = np.array([[sweep.ok_runs(c)[s].accuracy for s in seeds] for c in conds])
  ref = np.array([MISH_README[c][0] for c in conds])
  se = np.array([MISH_README[c][1] for c in conds]) / math.sqrt(MISH_RUNS)
  tau = _tau(m.mean(1), ref)
  if len(seeds) >= TAU_INTERVAL_MIN_SEEDS:
    rng = np.random.default_rng(0)
    lo, hi = _bootstrap_tau(
      lambda i: _tau(m[:, i].mean(1), ref + rng.normal(0, se)), np.arange(len(seeds))
    )
    interval = (
      f", 95% bootstrap interval [{lo:+.2f}, {hi:+.2f}] (our seeds resampled, the published"
      " means drawn from their standard errors)"
    )
  else:
    interval = f" (no interval: it needs ≥ {TAU_INTERVAL_MIN_SEEDS} seeds)"
  order = " > ".join(np.array(conds)[np.argsort(-m.mean(1))])
  return (
    f"- {label} ({len(seeds)} seeds, {len(conds)} activations): {order}; τ = {tau:+.2f}{interval}"
  )


def published(done: dict) -> str:
  """Section 11's measured half: the Mish README's table and the published
  "X beats ReLU" claims set against the 10-epoch study and the proxy."""
  studies = [(k, lab) for k, lab in (("budget10", "10 epochs"), ("proxy", "proxy")) if k in done]
  if not studies:
    return "The comparison studies have no finished runs yet."
  rows = {k: {r["condition"]: r for r in done[k]["rows"] if r["n_pairs"] >= 2} for k, _ in studies}
  ref = MISH_README["relu"][0]
  head = "| activation | Mish README Δ vs ReLU (points) |"
  rule = "|---|---:|"
  for _, lab in studies:
    head += f" {lab}: Δ [95% CI] | {lab}: verdict | {lab}: ours − published (p) |"
    rule += "---:|---|---:|"
  gaps = [head, rule]
  differ = {k: [] for k in rows}
  same_sign = {k: [] for k in rows}
  for c in sorted(MISH_README, key=lambda c: -MISH_README[c][0]):
    if c == "relu":
      continue
    pub = MISH_README[c][0] - ref
    line = f"| {c} | {pub:+.2f} |"
    for k, _ in studies:
      r = rows[k].get(c)
      if r is None:
        line += " – | – | – |"
        continue
      diff, p = gap_test(r, c)
      if p < ALPHA:
        differ[k].append(c)
      if np.sign(r["diff_mean"]) == np.sign(pub):
        same_sign[k].append(c)
      line += f" {_points(r)} | {r['verdict']} | {diff:+.2f} ({fmt_p(p)}) |"
    gaps.append(line)
  total = {k: sum(c in rows[k] for c in MISH_README if c != "relu") for k in rows}
  summary = " ".join(
    f"{lab}: our gap differs from the published one (p < {ALPHA}, unadjusted) for {len(differ[k])} of"
    f" {total[k]} ({', '.join(differ[k]) or 'none'}); our estimate has the published gap's sign"
    f" for {len(same_sign[k])} of {total[k]}."
    for k, lab in studies
  )
  ranks = [published_rank(done[k]["sweep"], lab) for k, lab in studies]
  published_order = " > ".join(sorted(MISH_README, key=lambda c: -MISH_README[c][0]))
  claims = ["| source | setup | claim | " + " | ".join(lab for _, lab in studies) + " |"]
  claims.append("|---|---|---|" + "---|" * len(studies))
  for source, setup, c in CLAIMS:
    cells = []
    for k, _ in studies:
      r = rows[k].get(c)
      cells.append(f"{against_claim(r)}: Δ {_points(r)}" if r else "–")
    claims.append(f"| {source} | {setup} | {c} > relu | " + " | ".join(cells) + " |")
  return "\n".join(
    [
      '**The Mish repository\'s CIFAR-10 table** (Misra, README, "Significance Level",'
      f" {MISH_RUNS} runs per activation: SqueezeNet, 50 epochs, Adam 1e-3, batch 128, Leaky"
      " ReLU slope 0.3). Its gaps to ReLU (unpaired runs) against ours (paired by seed, in"
      " points). *Ours − published* tests whether the two gaps differ, with both standard"
      " errors combined (the README's from its SDs over 23 runs, ours from the paired"
      " differences; Welch–Satterthwaite degrees of freedom): a large p says the gaps are"
      " not distinguishable at our precision, not that they agree.",
      "",
      *gaps,
      "",
      summary,
      "",
      f"Rank agreement with the README's ranking ({published_order}), Kendall τ over the"
      " activations both have:",
      "",
      *ranks,
      "",
      "**Published claims that an activation beats ReLU**, read against our"
      " verdicts (*agrees*: higher after Holm; *equivalent*: within the TOST margin, so"
      " an advantage larger than the margin is not reproduced here — a published gap"
      " smaller than the margin can neither be confirmed nor contradicted that way):",
      "",
      *claims,
    ]
  )


def pooled_holm(pooled: list) -> str:
  """Holm over every confirmatory test of the document."""
  if not pooled:
    return ""
  adjusted = inference.holm([p for _, _, p, _ in pooled])
  rows = sorted(zip(pooled, adjusted), key=lambda x: x[1])
  lines = [
    "| study | comparison | paired-t p | Holm p in its family | Holm p over the document |",
    "|---|---|---:|---:|---:|",
  ]
  for (study, label, p, fam), adj in rows:
    if adj < 0.5:
      lines.append(f"| {study} | {label} | {fmt_p(p)} | {fmt_p(fam)} | {fmt_p(adj)} |")
  survive = sum(a < ALPHA for a in adjusted)
  return f"""## 8. Every test of this page, Holm together

Each study's table adjusts within its own declared family. Pooled over the
page — the {len(pooled)} confirmatory tests of sections 1–7 together — Holm
keeps {survive} of them below 0.05. The rows with a pooled Holm p below
0.5, smallest first:

{chr(10).join(lines)}
"""


def _log10_ratio(run: stats.Run, key: str, step: int | None = 0) -> float | None:
  """log10 of the first over the last *hidden* layer's norm, at the first
  (step=0) or last diagnostics step. Hidden layers are those ∂L/∂z is
  measured for (`backprop_norm`); `grad_norm` also has the output layer,
  which is left out so that both columns span the same layers."""
  diags = run.split("diagnostics")
  if not diags:
    return None
  rec = diags[0] if step == 0 else diags[-1]
  vals, hidden = rec.get(key), rec.get("backprop_norm")
  if not vals or not hidden:
    return None
  layers = sorted(k for k in vals if k in hidden)
  first, last = float(vals[layers[0]]), float(vals[layers[-1]])
  if not (first > 0 and last > 0):
    raise ValueError(f"{run.workdir}: {key} of {layers[0]} or {layers[-1]} is {first}, {last}")
  return math.log10(first / last)


# sigma_w^2 = fan_in * Var(W) of the 128 -> 128 hidden layers.
WEIGHT_VAR = {"glorot_uniform": 128 * 2 / (128 + 128), "he_normal": 2.0}


def predicted_ratio(activation: str, init: str, depth: int) -> float | None:
  """log10 first/last hidden ‖∂L/∂z‖ at initialisation that signal
  propagation predicts: depth − 1 backward steps, each scaling the norm by
  sqrt(chi_1) at the length map's fixed point (actlab.theory; zero biases)."""
  if init not in WEIGHT_VAR:
    return None
  chi = theory.gradient_growth(activation, WEIGHT_VAR[init], 0.0)
  return None if not chi else (depth - 1) * 0.5 * math.log10(chi)


def vanishing(runs: Path, pooled: list) -> str:
  sweep = stats.read_sweep(runs / "vanishing", baseline="relu_d10")
  seeds, epochs = seeds_of(sweep), epochs_of(sweep)
  rows = [
    "| network | seeds | log10 ‖∂L/∂z‖ first/last hidden at init | predicted (χ₁) |"
    " at the last step | log10 ‖∂L/∂W‖ first/last hidden at init | val acc after training |",
    "|---|---:|---:|---:|---:|---:|---:|",
  ]
  for c in sweep.conditions:
    ok = sweep.ok_runs(c)
    if len(ok) < 2:
      continue
    cols = []
    for key, step in (("backprop_norm", 0), ("backprop_norm", None), ("grad_norm", 0)):
      v = [x for x in (_log10_ratio(r, key, step) for r in ok.values()) if x is not None]
      if v:
        s = stats.summarize(v)
        cols.append(f"{s.mean:+.2f} ± {s.half_width:.2f}")
      else:
        cols.append("–")
    f = sweep.fields.get(c, {})
    pred = predicted_ratio(
      f.get("model.activation", ""),
      f.get("model.kernel_init", ""),
      int(f.get("model.mlp_depth", 0)),
    )
    cols.insert(1, f"{pred:+.2f}" if pred is not None else "–")
    acc = stats.summarize([r.val_accuracy for r in ok.values()])
    rows.append(f"| {c} | {len(ok)} | {' | '.join(cols)} | {ci(acc)} |")
  contrasts = _he_vs_glorot(sweep, pooled)
  return f"""## 6. Vanishing gradients by depth and initialiser (`vanishing_gradients.py`)

{command(f"vanishing_gradients.py:epochs={epochs}", "vanishing", len(seeds), " --only=sigmoid_d10,tanh_d10,relu_d10,relu_he_d10,sigmoid_d30,tanh_d30,relu_d30,relu_he_d30")}

MLPs of 10 and 30 hidden layers of 128 units, standardised inputs, Adam
1e-3, {epochs} epoch(s), seeds {seeds}, {seconds(sweep) / 3600:.1f}
CPU-worker hours. ‖∂L/∂z‖ is the norm of the loss gradient with respect to
a layer's pre-activations on one training batch (the backward signal
alone); ‖∂L/∂W‖ mixes it with the layer's input. Values are log10 of the
first over the last hidden layer's norm (0 = no vanishing; −3 = a
thousandfold smaller), mean ± 95% t-interval over seeds. Norms are computed
scaled by the largest entry (`actlab.diagnostics.l2_norm`), so a vector of
entries around 1e-20 has its true norm, not 0. "Predicted" is
(depth − 1) · log10 √χ₁ from `actlab.theory` (χ₁ at the fixed point of the
length map, σ_w² = fan-in × Var(W): 1 for Glorot uniform here, 2 for He
normal; σ_b² = 0).

{chr(10).join(rows)}

He normal against Glorot uniform for the ReLU MLPs, paired by seed, Holm over
the {len(contrasts)} comparisons (the declared family of this study):

| depth | measure | He − Glorot [95% CI] | paired t p | permutation p | Holm p |
|---:|---|---:|---:|---:|---:|
{chr(10).join(contrasts)}
"""


def _he_vs_glorot(sweep: stats.Sweep, pooled: list) -> list[str]:
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
  for (d, label, k), p in zip(found, adjusted):
    pooled.append(("vanishing", f"depth {d}, {label}: He − Glorot", k.t_p, p))
  return [
    f"| {d} | {label} | {k.mean_diff:+.3f} [{k.ci_low:+.3f}, {k.ci_high:+.3f}]"
    f" | {fmt_p(k.t_p)} | {fmt_p(k.permutation_p)} | {fmt_p(p)} |"
    for (d, label, k), p in zip(found, adjusted)
  ]


def dying(runs: Path, born: dict, pooled: list) -> str:
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
    pooled.append(("dying", "dead fraction, relu lr 1e-2 − lr 1e-3", k.t_p, k.t_p))
    contrast = (
      f"ReLU at lr 1e-2 minus lr 1e-3, paired by seed: {k.mean_diff:+.3f}"
      f" [{k.ci_low:+.3f}, {k.ci_high:+.3f}] of units dead, paired t p = {fmt_p(k.t_p)},"
      f" exact permutation p = {fmt_p(k.permutation_p)} (a family of one)."
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
  return f"""## 7. Dying ReLU (`dying_relu.py`, `scripts/born_dead.py`)

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
signal (section 6).

### Learning rate

```bash
actlab-sweep --config=experiments/configs/dying_relu.py:epochs={epochs} --seeds={len(seeds)} --workers=auto --workdir=/tmp/studies/dying --config.data.data_dir=/tmp/tfds_real --config.data.download=False --only=relu_lr0.001,relu_lr0.01,leaky_relu_lr0.01,elu_lr0.01
actlab-report /tmp/studies/dying --baseline=relu_lr0.001
```

MLP of 5 hidden layers of 256 units, He normal, standardised inputs,
{epochs} epochs, seeds {seeds}, {seconds(sweep) / 3600:.1f} CPU-worker hours. Dead: |f′| ≤ 0.01·max|f′| for every example of a
training batch; near-dead: mean |f′| over the batch below that; mean over
layers, with a bootstrap 95% interval over seeds.

{chr(10).join(rows)}

{contrast}
"""


def finished(sweep) -> bool:
  done, planned = progress(sweep)
  return done >= planned


def readme_table(study: dict, label: str) -> str:
  rows = [r for r in study["rows"] if r["n"]]
  sweep = study["sweep"]
  done, planned = progress(sweep)
  status = "" if done >= planned else f" ({done} of {planned} planned runs finished so far)"
  lines = [
    f"{label}{status}: test accuracy at the validation-selected epoch (mean ± 95% CI), the"
    f" paired difference to {sweep.baseline} with its 95% CI, Holm p over the study's declared"
    " family, and the equivalence verdict at ±1 point:",
    "",
    f"| activation | seeds | test acc | Δ vs {sweep.baseline} [95% CI] | Holm p | verdict |",
    "|---|---:|---:|---:|---:|---|",
  ]
  for r in rows:
    half = (r["ci_high"] - r["ci_low"]) / 2
    if r["n_pairs"]:
      tail = (
        report.estimate_cell(r["diff_mean"], r["diff_ci_low"], r["diff_ci_high"])
        + f" | {fmt_p(r['t_p_holm'])} | {r['verdict']}"
      )
    else:
      tail = "– | – | –"
    spread = f" ± {half:.4f}" if r["n"] >= 2 else ""  # one seed: no interval
    lines.append(f"| {r['condition']} | {r['n']} | {r['mean']:.4f}{spread} | {tail} |")
  return "\n".join(lines)


STUDIES = ("budget10", "proxy", "comparison", "learning_rates", "factorial", "vanishing", "dying")


def has_runs(runs: Path, name: str) -> bool:
  """Whether study `name` under `runs` has its sweep.json and at least one
  finished run (a started study may have only its plan)."""
  study = runs / name
  return (study / "sweep.json").exists() and next(study.rglob("done.json"), None) is not None


def figures(runs: Path, out: Path) -> None:
  """Each study's report (figures with bands, results.csv with interval
  columns, runs.csv) into out/<study>/, as `actlab-report` writes it."""
  for name in STUDIES:
    if has_runs(runs, name):
      baseline = {"vanishing": "relu_d10", "dying": "relu_lr0.001"}.get(name)
      report.report(stats.read_sweep(runs / name, baseline), out / name)
      print(f"wrote {out / name}")


# Sections whose study has no committed run yet: the title and the command.
PENDING = {
  "BUDGET10": (
    "1. The tutorial's budget: ten activations, 10 epochs (`activation_comparison.py`)",
    command("activation_comparison.py", "budget10", 5),
  ),
  "PROXY": ("2. A powered proxy (`proxy_comparison.py`)", command("proxy_comparison.py", "proxy")),
  "SHORT": (
    "3. Learning speed: the comparison after 3 epochs",
    command("activation_comparison.py:epochs=3", "comparison", 5),
  ),
  "LEARNING_RATES": (
    "4. Each activation at its own learning rate (`learning_rates.py`)",
    command("learning_rates.py", "learning_rates", 5, REUSE_PROXY),
  ),
  "FACTORIAL": (
    "5. Input scaling × initialiser, per activation (`factorial_confound.py`)",
    command("factorial_confound.py", "factorial", 5, REUSE_PROXY),
  ),
}


# The report folder (docs/figures/<name>) of each comparison section's study.
FIGURE_DIRS = {
  "BUDGET10": "budget10",
  "PROXY": "proxy",
  "SHORT": "comparison",
  "LEARNING_RATES": "learning_rates",
  "FACTORIAL": "factorial",
}


def provenance(runs: Path) -> str:
  """Per study: which commits and which XLA settings trained its finished runs."""
  from actlab import workdir  # pylint: disable=g-import-not-at-top

  rows, mixed = [], []
  for study in sorted(p for p in runs.iterdir() if (p / "sweep.json").exists()):
    folders = [d.parent for d in sorted(study.glob("*/seed_*/done.json"))]
    if not folders:
      continue
    lines = {d: workdir.read_provenance(d) for d in folders}
    recorded = [x for d in folders for x in lines[d]]
    commits = sorted(
      {
        (x.get("git_commit") or "no git")[:7] + (" (dirty)" if x.get("git_dirty") else "")
        for x in recorded
      }
    )
    settings = sorted(
      {
        f"{x['platform']}, {x['cpus']} core(s), {x['xla_flags'] or 'default XLA flags'}"
        for x in recorded
        if "cpus" in x
      }
    )
    if len(commits) > 1:
      mixed.append(study.name)
    rows.append(
      f"| {study.name} | {len(folders)} | {sum(bool(v) for v in lines.values())} |"
      f" {', '.join(commits) or '–'} | {'; '.join(settings) or 'not recorded'} |"
    )
  verdict = (
    f"**Mixed code versions** in {', '.join(mixed)}."
    if mixed
    else "Every study with recorded provenance was trained, start and resume, by one commit."
  )
  return "\n".join(
    [
      "| study | finished runs | with provenance | commit(s) | XLA setting |",
      "|---|---:|---:|---|---|",
      *rows,
      "",
      verdict + " Runs without provenance predate it (`actlab.workdir.record_provenance`);"
      " the XLA setting is recorded from this version on (the a7b6136 runs above:"
      " sweeps of 2 workers, each pinned to one core with XLA single-threaded).",
    ]
  )


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--runs", type=Path, default=Path("docs/runs"))
  parser.add_argument("--out", type=Path, default=Path("docs/findings.md"))
  parser.add_argument("--template", type=Path, default=Path("docs/findings_template.md"))
  parser.add_argument(
    "--readme", type=Path, default=None, help="README whose results block to update"
  )
  parser.add_argument(
    "--figures", type=Path, default=None, help="also write each study's report into FIGURES/<study>"
  )
  args = parser.parse_args(argv)
  runs = args.runs
  born = json.loads((runs / "born_dead" / "born_dead.json").read_text())
  pooled: list = []
  have = lambda name: has_runs(runs, name)  # noqa: E731
  done: dict = {}
  sections = {}
  if have("budget10"):
    sections["BUDGET10"], done["budget10"] = budget10(runs, pooled)
  if have("comparison"):
    sections["SHORT"], done["short"] = short(runs, pooled, done)
  if have("proxy"):
    sections["PROXY"], done["proxy"] = proxy(runs, pooled, done)
  sections["LEARNING_RATES"] = learning_rates(runs, pooled) if have("learning_rates") else ""
  sections["FACTORIAL"] = factorial(runs, pooled) if have("factorial") else ""
  for key, (title, cmd) in PENDING.items():
    if not sections.get(key):
      sections[key] = f"## {title}\n\n{cmd}\n\n**Not run yet**: no finished run is committed."
    elif key in FIGURE_DIRS:  # a study with runs has its report
      name = FIGURE_DIRS[key]
      sections[key] += f"\n\nFigures: [docs/figures/{name}](figures/{name}/report.md)."
  sections["VANISHING"] = vanishing(runs, pooled) if have("vanishing") else ""
  sections["DYING"] = dying(runs, born, pooled) if have("dying") else ""
  sections["POOLED"] = pooled_holm(pooled)
  sections["PROVENANCE"] = provenance(runs)
  sections["PUBLISHED"] = published(done)
  text = args.template.read_text()
  for key, value in sections.items():
    text = text.replace("{{" + key + "}}", value.strip())
  for key, value in _numbers(done).items():
    text = text.replace("{{" + key + "}}", value)
  left = re.findall(r"\{\{[A-Z_:.0-9a-z]+\}\}", text)
  if left:
    raise SystemExit(f"error: {args.template} has placeholders with no value: {sorted(set(left))}")
  args.out.write_text(text)
  print(f"wrote {args.out}")
  if args.readme:
    labels = {
      "budget10": "LeNet5 on CIFAR-10, the tutorial's 10 epochs",
      "proxy": "LeNet5 on 10,000 CIFAR-10 images, 8 epochs (the proxy)",
    }
    shown = [k for k in labels if k in done]
    # Finished studies first; one still running follows, marked as such.
    shown.sort(key=lambda k: not finished(done[k]["sweep"]))
    tables = [readme_table(done[k], labels[k]) for k in shown]
    readme = args.readme.read_text()
    begin, end = "<!-- results:begin -->", "<!-- results:end -->"
    if begin not in readme or end not in readme:
      raise SystemExit(f"error: {args.readme} has no {begin} ... {end} block")
    head_part, rest = readme.split(begin, 1)
    _, tail = rest.split(end, 1)
    block = "\n\n".join(tables)
    args.readme.write_text(head_part + begin + "\n" + block + "\n" + end + tail)
    print(f"updated {args.readme}")
  if args.figures:
    figures(runs, args.figures)
  return 0


def _numbers(done: dict) -> dict[str, str]:
  """{{DIFF:study:cond}}, {{HOLM:study:cond}}, {{VERDICT:study:cond}} for the template's prose."""
  out = {}
  for study, d in done.items():
    for r in d["rows"]:
      c = r["condition"]
      if r["n"]:
        out[f"MEAN:{study}:{c}"] = f"{r['mean']:.4f} ± {(r['ci_high'] - r['ci_low']) / 2:.4f}"
      if r["n_pairs"]:
        out[f"DIFF:{study}:{c}"] = report.estimate_cell(
          r["diff_mean"], r["diff_ci_low"], r["diff_ci_high"]
        )
        out[f"HOLM:{study}:{c}"] = fmt_p(r["t_p_holm"])
        out[f"VERDICT:{study}:{c}"] = r["verdict"]
  return out


if __name__ == "__main__":
  sys.exit(main())
