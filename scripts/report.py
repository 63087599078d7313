r"""Tables (and figures) from saved runs, without retraining.

  python scripts/report.py /tmp/actlab/lenet5_relu [WORKDIR ...] [--out=report.md]

Reads each WORKDIR/metrics.jsonl and config.json and prints a markdown
per-epoch table for every run and a summary table across runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from actlab import train, writers  # noqa: E402


def epoch_table(workdir: Path) -> str:
  """Keras-like per-epoch table: loss, acc, val_loss, val_acc, seconds."""
  records = writers.read_metrics(workdir)
  by_epoch: dict[int, dict] = {}
  for r in records:
    if r["split"] in ("train", "eval"):
      by_epoch.setdefault(r["epoch"], {})[r["split"]] = r
  lines = [
      "| epoch | loss | acc | val_loss | val_acc | time (s) | ms/step |",
      "|---:|---:|---:|---:|---:|---:|---:|",
  ]
  for epoch in sorted(by_epoch):
    t, e = by_epoch[epoch].get("train"), by_epoch[epoch].get("eval")
    if not (t and e):
      continue
    lines.append(
        f"| {epoch} | {t['loss']:.4f} | {t['accuracy']:.4f} | {e['loss']:.4f}"
        f" | {e['accuracy']:.4f} | {t['seconds']:.1f} | {t['ms_per_step']:.0f} |"
    )
  return "\n".join(lines)


def summary_table(workdirs: list[Path]) -> str:
  lines = [
      "| run | activation | epochs | final val_acc | best val_acc (epoch) |",
      "|---|---|---:|---:|---:|",
  ]
  for wd in workdirs:
    cfg = json.loads((wd / "config.json").read_text())
    s = train.final_summary(wd)
    lines.append(
        f"| {wd.name} | `{cfg['activation']}` | {s['epochs']} |"
        f" {s['final_eval_accuracy']:.4f} | {s['best_eval_accuracy']:.4f} ({s['best_epoch']}) |"
    )
  return "\n".join(lines)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("workdirs", nargs="+", type=Path)
  parser.add_argument("--out", type=Path, default=None, help="also write the markdown here")
  args = parser.parse_args()
  parts = ["## Summary", "", summary_table(args.workdirs), ""]
  for wd in args.workdirs:
    parts += [f"## {wd.name}", "", epoch_table(wd), ""]
  text = "\n".join(parts)
  print(text)
  if args.out:
    args.out.write_text(text)


if __name__ == "__main__":
  main()
