r"""Runs a study: every condition of a config's `sweep()` at every seed.

  python scripts/sweep.py --config=experiments/configs/activation_comparison.py \
      --seeds=5 --workers=auto --workdir=/tmp/actlab/comparison \
      [--config.data.data_dir=/data/tfds --config.data.download=False ...] [--only=relu,tanh]
  python scripts/report.py /tmp/actlab/comparison

Each run trains in WORKDIR/<condition>/seed_<s>/ (its own config.json,
metrics.jsonl, checkpoints, log.txt). Rerunning the same command skips
finished runs and resumes interrupted ones; more seeds can be added later.
`--workers=auto` runs one worker process per core, each pinned to its core.
`--launcher=slurm` writes WORKDIR/slurm/sweep.sbatch, a job array with one
task per run (exit 75 requeues), and `--submit` submits it.
`--reuse=OTHER_SWEEP` (repeatable) first copies the finished runs of another
sweep that trained the same config with the same code, instead of training
them again (`actlab.sweep.reuse_finished`): studies that share cells train
them once.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

from actlab import sweep
from actlab.cli import console


def _literal(value: str):
  try:
    return ast.literal_eval(value)
  except (ValueError, SyntaxError):
    return value


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--config", required=True, help="study config file[:arg]")
  parser.add_argument("--workdir", required=True, type=Path, help="the sweep's folder")
  parser.add_argument("--seeds", default="", help="a count (5), a list (0,3,7) or a range (10-14)")
  parser.add_argument("--only", default="", help="comma-separated condition names to run")
  parser.add_argument(
    "--workers", default="1", help="parallel worker processes, or 'auto' (one per core)"
  )
  parser.add_argument(
    "--reuse",
    action="append",
    default=[],
    type=Path,
    help="a sweep whose finished runs with the same config and code are copied, not retrained",
  )
  parser.add_argument("--launcher", choices=("local", "slurm"), default="local")
  parser.add_argument("--submit", action="store_true", help="with --launcher=slurm: run sbatch")
  parser.add_argument(
    "--sbatch", action="append", default=[], help="an #SBATCH option, e.g. --sbatch=--gpus=1"
  )
  parser.add_argument(
    "--max_parallel", type=int, default=0, help="slurm: at most this many tasks at once"
  )
  args, rest = parser.parse_known_args(argv)
  overrides = {}
  for item in rest:
    key, sep, value = item.removeprefix("--config.").partition("=")
    if not item.startswith("--config.") or not sep:
      parser.error(f"unrecognised argument {item!r}; overrides look like --config.FIELD=VALUE")
    overrides[key] = _literal(value)
  try:
    seeds = sweep.parse_seeds(args.seeds) if args.seeds else None
    only = [s for s in args.only.split(",") if s]
    p = sweep.plan(args.config, overrides, seeds, only)
    for run in p.runs()[:1]:
      sweep.run_config(p, run)  # a bad override fails here, before any run starts
    p.save(args.workdir)
    workers = sweep.resolve_workers(args.workers)
    if args.reuse:
      single_threaded = sweep.pins(workers) if args.launcher == "local" else None
      reused = sweep.reuse_finished(args.workdir, args.reuse, single_threaded)
      for line in reused["other code"]:
        print(f"  not reused: {line}")
      print(f"reused {len(reused['reused'])} finished runs of {', '.join(map(str, args.reuse))}")
    if args.launcher == "slurm":
      script = sweep.write_slurm(args.workdir, args.sbatch, args.max_parallel)
      print(f"wrote {script} ({len(p.tasks())} array tasks)")
      if args.submit:
        print(sweep.submit_slurm(script))
      return 0
    outcome = sweep.run_local(args.workdir, workers)
  except (sweep.SweepError, ValueError, TypeError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  print(" ".join(f"{k}: {len(v)}" for k, v in outcome.items()))
  if outcome["failed"]:
    print("failed: " + ", ".join(outcome["failed"]), file=sys.stderr)
    return 1
  return sweep.PREEMPTED_EXIT_CODE if outcome["preempted"] else 0


def run() -> None:
  """The console script's entry point."""
  console(main)


if __name__ == "__main__":
  run()
