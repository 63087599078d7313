r"""Tables and figures from saved runs, without retraining.

  python scripts/report.py WORKDIR [WORKDIR ...] [--out=DIR]

Reads each WORKDIR/metrics.jsonl and config.json and writes DIR/report.md
(summary table, per-epoch tables) and PNG figures: learning curves; for runs
with diagnostics, gradient norm by layer at initialisation and at the end
(log scale), the first-to-last layer gradient ratio, the dead-unit and
saturated fractions over training. DIR defaults to the workdirs' common
parent + /report.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from actlab import train, writers  # noqa: E402


class Run:
  """One workdir's config and records."""

  def __init__(self, workdir: Path):
    self.workdir = workdir
    self.name = workdir.name
    self.config = json.loads((workdir / "config.json").read_text())
    self.records = writers.read_metrics(workdir)

  def split(self, name: str) -> list[dict]:
    # A resumed run may repeat a step; the latest record wins.
    latest = {r["step"]: r for r in self.records if r["split"] == name}
    return [latest[s] for s in sorted(latest)]

  def by_epoch(self, name: str) -> dict[int, dict]:
    return {r["epoch"]: r for r in self.records if r["split"] == name}

  @property
  def diagnostics(self) -> list[dict]:
    return self.split("diagnostics")


def epoch_table(run: Run) -> str:
  """Keras-like per-epoch table: loss, acc, val_loss, val_acc, seconds."""
  trains, evals = run.by_epoch("train"), run.by_epoch("eval")
  lines = [
    "| epoch | loss | acc | val_loss | val_acc | time (s) | ms/step |",
    "|---:|---:|---:|---:|---:|---:|---:|",
  ]
  for epoch in sorted(set(trains) & set(evals)):
    t, e = trains[epoch], evals[epoch]
    lines.append(
      f"| {epoch} | {t['loss']:.4f} | {t['accuracy']:.4f} | {e['loss']:.4f}"
      f" | {e['accuracy']:.4f} | {t['seconds']:.1f} | {t['ms_per_step']:.0f} |"
    )
  return "\n".join(lines)


def _ratio(diag: dict) -> float:
  norms = list(diag["grad_norm"].values())  # forward order, output layer last
  return norms[0] / norms[-1]


def _mean(values: dict) -> float:
  # max(0, .): runs logged before dead_fraction was computed as a mean of
  # booleans stored 1 - mean(alive), which rounds to -1e-8 when all are alive.
  return max(sum(values.values()) / len(values), 0.0)


def summary_table(runs: list[Run]) -> str:
  lines = [
    "| run | model | activation | lr | epochs | final val_acc | best val_acc (epoch)"
    " | grad first/last at init | at end | dead units at end (mean of layers) |",
    "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
  ]
  for run in runs:
    c, s = run.config, train.final_summary(run.workdir)
    model = c["model"] + (f" depth {c['mlp_depth']}" if c["model"] == "mlp" else "")
    d = run.diagnostics
    init = f"{_ratio(d[0]):.2e}" if d else "-"
    end = f"{_ratio(d[-1]):.2e}" if d else "-"
    dead = f"{_mean(d[-1]['dead']):.3f}" if d and "dead" in d[-1] else "-"
    lines.append(
      f"| {run.name} | {model} | `{c['activation']}` | {c['learning_rate']:g} |"
      f" {s.get('epochs', 0)} | {s.get('final_eval_accuracy', float('nan')):.4f} |"
      f" {s.get('best_eval_accuracy', float('nan')):.4f} ({s.get('best_epoch', '-')}) |"
      f" {init} | {end} | {dead} |"
    )
  return "\n".join(lines)


# ----------------------------------------------------------------------------
# Figures
# ----------------------------------------------------------------------------


def _save(fig, path: Path) -> Path:
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)
  return path


def learning_curves(runs: list[Run], out: Path) -> Path:
  fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(11, 4))
  for run in runs:
    trains, evals = run.by_epoch("train"), run.by_epoch("eval")
    color = None
    for ax, key in ((ax_acc, "accuracy"), (ax_loss, "loss")):
      (line,) = ax.plot(
        sorted(evals),
        [evals[e][key] for e in sorted(evals)],
        "o-",
        color=color,
        label=f"{run.name} (val)",
      )
      color = line.get_color()
      ax.plot(
        sorted(trains), [trains[e][key] for e in sorted(trains)], "--", color=color, alpha=0.6
      )
  ax_acc.set(xlabel="epoch", ylabel="accuracy", title="Accuracy (solid: validation, dashed: train)")
  ax_loss.set(
    xlabel="epoch", ylabel="cross-entropy", title="Loss (solid: validation, dashed: train)"
  )
  ax_acc.legend(fontsize=7)
  ax_acc.grid(alpha=0.3)
  ax_loss.grid(alpha=0.3)
  return _save(fig, out / "learning_curves.png")


def _groups(runs: list[Run]) -> dict[str, list[Run]]:
  """Runs grouped by model (and depth, and learning rate where they differ)."""
  several_lrs = len({r.config["learning_rate"] for r in runs}) > 1
  keyed: dict[tuple, list[Run]] = defaultdict(list)
  for run in runs:
    c = run.config
    depth = c["mlp_depth"] if c["model"] == "mlp" else 0
    keyed[(c["model"], depth, c["learning_rate"] if several_lrs else 0)].append(run)
  groups = {}
  for model, depth, lr in sorted(keyed):
    title = f"MLP, depth {depth}" if model == "mlp" else model
    groups[title + (f", lr {lr:g}" if several_lrs else "")] = keyed[(model, depth, lr)]
  return groups


def grad_norm_by_layer(runs: list[Run], out: Path) -> Path:
  groups = _groups(runs)
  fig, axes = plt.subplots(1, len(groups), figsize=(4.2 * len(groups), 3.8), squeeze=False)
  for ax, (title, members) in zip(axes[0], groups.items()):
    for run in members:
      d = run.diagnostics
      norms0 = list(d[0]["grad_norm"].values())
      (line,) = ax.semilogy(
        range(1, len(norms0) + 1), norms0, "o-", ms=3, label=f"{run.config['activation']} (init)"
      )
      norms1 = list(d[-1]["grad_norm"].values())
      ax.semilogy(
        range(1, len(norms1) + 1),
        norms1,
        "--",
        color=line.get_color(),
        label=f"{run.config['activation']} (step {d[-1]['step']})",
      )
    ax.set(xlabel="layer (1 = input side)", ylabel="||dL/dW||", title=title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
  return _save(fig, out / "grad_norm_by_layer.png")


def _over_steps(runs: list[Run], out: Path, name: str, value, ylabel: str, log: bool) -> Path:
  groups = _groups(runs)
  fig, axes = plt.subplots(1, len(groups), figsize=(4.2 * len(groups), 3.8), squeeze=False)
  for ax, (title, members) in zip(axes[0], groups.items()):
    for run in members:
      d = [r for r in run.diagnostics if value(r) is not None]
      ax.plot(
        [r["step"] for r in d], [value(r) for r in d], "o-", ms=3, label=run.config["activation"]
      )
    if log:
      ax.set_yscale("log")
    ax.set(xlabel="training step", ylabel=ylabel, title=title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
  return _save(fig, out / f"{name}.png")


def figures(runs: list[Run], out: Path) -> list[Path]:
  paths = [learning_curves(runs, out)]
  diag = [r for r in runs if r.diagnostics]
  if diag:
    paths.append(grad_norm_by_layer(diag, out))
    paths.append(
      _over_steps(
        diag, out, "grad_ratio_over_training", _ratio, "||dL/dW first|| / ||dL/dW last||", log=True
      )
    )
    with_dead = [r for r in diag if "dead" in r.diagnostics[0]]
    if with_dead:
      paths.append(
        _over_steps(
          with_dead,
          out,
          "dead_units_over_training",
          lambda r: _mean(r["dead"]) if "dead" in r else None,
          "dead-unit fraction (mean of layers)",
          log=False,
        )
      )
      paths.append(
        _over_steps(
          with_dead,
          out,
          "saturated_over_training",
          lambda r: _mean(r["saturated"]) if "saturated" in r else None,
          "saturated fraction, |f'| < threshold",
          log=False,
        )
      )
  return paths


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("workdirs", nargs="+", type=Path)
  parser.add_argument("--out", type=Path, default=None, help="folder for report.md and PNGs")
  args = parser.parse_args()
  workdirs = [w for w in args.workdirs if (w / "metrics.jsonl").exists()]
  if not workdirs:
    parser.error("none of the given folders holds a metrics.jsonl")
  out = args.out or Path(os.path.commonpath([w.absolute() for w in workdirs])) / "report"
  if len(workdirs) == 1 and args.out is None:
    out = workdirs[0] / "plots"
  out.mkdir(parents=True, exist_ok=True)
  runs = [Run(w) for w in workdirs]
  pngs = figures(runs, out)
  parts = ["## Summary", "", summary_table(runs), ""]
  parts += [f"![{p.stem}]({p.name})" for p in pngs] + [""]
  for run in runs:
    parts += [f"## {run.name}", "", epoch_table(run), ""]
  text = "\n".join(parts)
  (out / "report.md").write_text(text)
  print(text)
  print(f"\nWrote {out / 'report.md'} and {len(pngs)} figures.", file=sys.stderr)


if __name__ == "__main__":
  main()
