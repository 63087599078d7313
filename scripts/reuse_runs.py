r"""Fills a planned sweep with finished runs of other sweeps that trained the same config.

  python scripts/reuse_runs.py --target=RUNS/learning_rates --source=RUNS/proxy [--dry_run]

Studies share cells: the learning-rate study's 1e-3 runs and the factorial's
raw-input Glorot runs are the proxy comparison's runs at the same seeds. A
run of the target sweep (whose sweep.json is planned, e.g. by
`scripts/sweep.py ... --launcher=slurm` or a first start) is copied from a
source sweep when the source holds a finished run (done.json) at the same
seed whose config equals, field for field, the config the target would train
with. Only `activations` (the list of conditions a study sweeps, which
training does not read) may differ. The source run must also have been
trained, in every start and resume, by the git commit and the jax, jaxlib,
flax, optax and numpy versions this script runs with.

The copy is then the run the target would train, provided both run XLA in
the same threading: a sweep with several workers pins each to one core with
XLA single-threaded, a one-worker sweep does neither, and that changes the
order of float sums. Measured on the proxy's relu seed 0 retrained as the
learning-rate study's relu_lr0.001 seed 0 (same commit and config): by a
pinned single-threaded worker, metrics.jsonl identical apart from timings;
by an unpinned multi-threaded one, validation accuracy 0.4538 at the end
instead of 0.4476.

The copy holds metrics, log, events and provenance (not the checkpoints); its
config.json is the target's, and its done.json names the target run and the
source run it came from (`reused_from`, relative to the folder that holds the
target sweep, e.g. `proxy/relu/seed_0`). Nothing is overwritten: target runs
that have started or finished are left as they are. Run it while the target
sweep is not running.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from actlab import sweep, workdir  # noqa: E402

# Study-level fields that training does not read.
NOT_TRAINED = ("activations",)
# What a run's numerics depend on besides its config.
CODE_FIELDS = ("git_commit", "git_dirty", "jax", "jaxlib", "flax", "optax", "numpy")
COPIED = ("metrics.jsonl", "log.txt", "provenance.jsonl")


def _trained_fields(config: dict) -> dict:
  if set(config) == {"digest", "config"}:  # config.json with a digest
    config = config["config"]
  return {k: v for k, v in config.items() if k not in NOT_TRAINED}


def _code_differs(run_dir: Path, code: dict) -> str | None:
  """Why the run's recorded code is not `code`, or None when it is the same."""
  path = run_dir / workdir.PROVENANCE_FILE
  if not path.exists():
    return "it records no provenance"
  for line in path.read_text().splitlines():
    started = json.loads(line)
    for field in CODE_FIELDS:
      if started.get(field) != code.get(field):
        return f"it was trained with {field}={started.get(field)!r}, not {code.get(field)!r}"
  return None


def finished_runs(source: Path) -> dict[tuple[int, str], Path]:
  """(seed, config as JSON) -> folder, for every finished run of a sweep."""
  found = {}
  for done in sorted(Path(source).glob(f"*/seed_*/{sweep.DONE_FILE}")):
    run_dir = done.parent
    config = _trained_fields(json.loads((run_dir / "config.json").read_text()))
    found.setdefault((config["seed"], json.dumps(config, sort_keys=True)), run_dir)
  return found


def reuse(target: Path, sources: list[Path], dry_run: bool = False) -> dict[str, list[str]]:
  """Copies matching finished runs into the target sweep; what happened to each run."""
  plan = sweep.Plan.load(target)
  code = workdir.code_version()
  if not code.get("git_commit") or code.get("git_dirty"):
    raise sweep.SweepError(
      "actlab is not imported from a clean git checkout, so whether a source run was"
      " trained by this code cannot be checked; run from the checkout the target"
      " sweep trains with."
    )
  available = {}
  for source in sources:
    if not (Path(source) / sweep.PLAN_FILE).exists():
      raise sweep.SweepError(f"{source} holds no {sweep.PLAN_FILE}; give a sweep folder.")
    for key, run_dir in finished_runs(source).items():
      available.setdefault(key, run_dir)
  outcome = {"reused": [], "kept": [], "no match": [], "other code": []}
  for run in plan.runs():
    dest = sweep.run_dir(target, run)
    if sweep.status(target, run) != "new" or (dest.exists() and any(dest.iterdir())):
      outcome["kept"].append(run.name)
      continue
    config = sweep.run_config(plan, run)
    trained = _trained_fields(json.loads(json.dumps(workdir.resolved_config(config))))
    source_dir = available.get((run.seed, json.dumps(trained, sort_keys=True)))
    if source_dir is None:
      outcome["no match"].append(run.name)
      continue
    why = _code_differs(source_dir, code)
    if why:
      outcome["other code"].append(f"{run.name} ({source_dir}: {why})")
      continue
    outcome["reused"].append(f"{run.name} <- {source_dir}")
    if not dry_run:
      _copy_run(source_dir, dest, run, config)
  return outcome


def _copy_run(source_dir: Path, dest: Path, run: sweep.Run, config) -> None:
  """The finished run at `source_dir` as `dest`, which appears whole or not at all."""
  tmp = dest.with_name(dest.name + ".reusing")
  shutil.rmtree(tmp, ignore_errors=True)
  tmp.mkdir(parents=True)
  for name in COPIED:
    if (source_dir / name).exists():
      shutil.copy2(source_dir / name, tmp / name)
  for events in source_dir.glob("events.out.tfevents.*"):
    shutil.copy2(events, tmp / events.name)
  workdir.write_config(config, tmp)
  done = json.loads((source_dir / sweep.DONE_FILE).read_text())
  # Relative to the folder that holds both sweeps, so the record survives a move.
  done.update(run=run.name, reused_from=os.path.relpath(source_dir, dest.parents[2]))
  (tmp / sweep.DONE_FILE).write_text(json.dumps(done, indent=2) + "\n")
  if dest.exists():  # empty (checked by `reuse`): nothing to lose
    dest.rmdir()
  tmp.replace(dest)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--target", required=True, type=Path, help="the planned sweep to fill")
  parser.add_argument(
    "--source", required=True, action="append", type=Path, help="a sweep to copy from (repeatable)"
  )
  parser.add_argument("--dry_run", action="store_true", help="say what would be copied")
  args = parser.parse_args(argv)
  try:
    outcome = reuse(args.target, args.source, args.dry_run)
  except (sweep.SweepError, OSError, ValueError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  for line in outcome["reused"] + [f"not reused: {x}" for x in outcome["other code"]]:
    print(("would copy " if args.dry_run else "copied ") + line if "<-" in line else line)
  print(" ".join(f"{k}: {len(v)}" for k, v in outcome.items()))
  return 0


if __name__ == "__main__":
  sys.exit(main())
