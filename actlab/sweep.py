"""Sweeps: conditions x seeds, one ordinary run each.

A sweep is a study config's `sweep()` (its conditions: a name and the config
fields that differ) crossed with a list of seeds. Each run trains in
`SWEEP/<condition>/seed_<s>/` like any other run, so it checkpoints, resumes
and is reported the same way; `SWEEP/sweep.json` records the plan, and
`done.json` in a run's folder marks it finished. Rerunning a sweep therefore
skips finished runs and resumes interrupted ones, on any machine that sees the
folder. The seed fixes the initialisation and the data order, so conditions
that share a seed form a paired comparison. With `seeds_per_program=N` (an
override or a config field) a worker or array task trains N seeds of one
condition in one program (`Plan.tasks`, `actlab.multiseed`), each still in
its own `seed_<s>/` folder. Studies that share cells train them once:
`reuse_finished` (`actlab-sweep --reuse`) copies another sweep's finished run
when its config and code are this sweep's.

Executors:
  local   one worker process per run, at most `workers` at a time; with
          several workers each is pinned to its own core (for LeNet5-sized
          models, processes on separate cores beat one process on all cores).
          Workers die with the sweep: a killed sweep leaves each run saved by
          its SIGTERM handler or resumable from its last checkpoint.
  slurm   a job-array script, one array task per run (`write_slurm`); exit 75
          (preempted after saving) requeues the task.

  python -m actlab.sweep run SWEEP --index=I    # one task of a planned sweep
"""

from __future__ import annotations

# ruff: noqa: E402  (a worker's SIGTERM handler comes before the other imports)
if __name__ == "__main__":  # a worker: a SIGTERM from its first moment exits with 75
  from actlab import faults as _faults

  _faults.exit_at_once_on_sigterm()

import argparse
import ctypes
import dataclasses
import importlib.util
import inspect
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import ml_collections

from actlab.config import closest_field, upgrade_fields, value_at
from actlab.distributed import available_cores

PLAN_FILE = "sweep.json"
DONE_FILE = "done.json"
LOG_FILE = "log.txt"
PREEMPTED_EXIT_CODE = 75  # as actlab.faults
BUSY_EXIT_CODE = 3


class SweepError(ValueError):
  """A sweep cannot be planned or run as asked; the message says why."""


# ----------------------------------------------------------------------------
# The plan
# ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Run:
  """One run of a sweep: a condition at a seed."""

  condition: str
  seed: int
  fields: dict[str, Any]

  @property
  def name(self) -> str:
    return f"{self.condition}/seed_{self.seed}"


@dataclasses.dataclass
class Plan:
  """What a sweep runs: a config file, its conditions, the seeds."""

  config: str  # path of the config file, optionally `:arg`
  conditions: list[dict[str, Any]]  # {"name": str, "fields": {field: value}}
  seeds: list[int]
  overrides: dict[str, Any] = dataclasses.field(default_factory=dict)
  baseline: str | None = None
  # The confirmatory comparisons, [condition, reference] pairs: Holm runs over
  # exactly these. Empty: every condition against the baseline.
  family: list[list[str]] = dataclasses.field(default_factory=list)
  # How conditions combine in the analysis, when they are not a plain list:
  # {"select": {...}} (a value chosen per group on validation) or
  # {"factorial": {...}} (a 2x2 design per group). See actlab.stats.
  design: dict[str, Any] = dataclasses.field(default_factory=dict)

  def runs(self) -> list[Run]:
    """Seed-major order, so a partly finished sweep has every condition at
    its first seeds (the paired comparison grows evenly)."""
    return [Run(c["name"], seed, dict(c["fields"])) for seed in self.seeds for c in self.conditions]

  def tasks(self) -> list[list[int]]:
    """What each worker process (or array task) trains, as indices into `runs()`:
    one run each, or with `seeds_per_program=N` up to N seeds of one condition
    in one program (`actlab.multiseed`), in the plan's order of seeds."""
    k = len(self.conditions)
    out = []
    for c, cond in enumerate(self.conditions):
      n = run_config(self, Run(cond["name"], self.seeds[0], dict(cond["fields"]))).get(
        "seeds_per_program", 1
      )
      if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise SweepError(f"seeds_per_program must be a positive integer, got {n!r}.")
      out += [
        (first, list(range(first * k + c, min(first + n, len(self.seeds)) * k, k)))
        for first in range(0, len(self.seeds), n)
      ]
    # Seed-major like runs() (a stable sort keeps the conditions' order).
    return [task for _, task in sorted(out, key=lambda t: t[0])]

  def save(self, sweep_dir: Path) -> None:
    sweep_dir.mkdir(parents=True, exist_ok=True)
    path = sweep_dir / PLAN_FILE
    text = json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True) + "\n"
    if path.exists() and read_plan_file(path) != json.loads(text):
      changes = Plan.load(sweep_dir)._changes(self)
      if changes:
        raise SweepError(
          f"{sweep_dir} holds a sweep with another config, conditions or overrides"
          f" ({path}):\n" + "\n".join(f"  {c}" for c in changes) + "\nUse another"
          " --workdir, or the same command as before (more --seeds may be added;"
          " fields that may change when a run resumes, such as data.data_dir, may differ)."
        )
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)

  def _changes(self, new: Plan) -> list[str]:
    """`what: old -> new` for each difference a rerun of this sweep may not make."""
    from actlab.workdir import may_change_on_resume  # pylint: disable=g-import-not-at-top

    changes = [
      f"{what}: {old!r} -> {now!r}"
      for what, old, now in (
        ("config", self.config, new.config),
        ("conditions", self.conditions, new.conditions),
      )
      if old != now
    ]
    for key in sorted(self.overrides.keys() | new.overrides.keys()):
      old, now = self.overrides.get(key, "(unset)"), new.overrides.get(key, "(unset)")
      if old != now and not may_change_on_resume(key):
        changes.append(f"--config.{key}: {old!r} -> {now!r}")
    return changes

  @classmethod
  def load(cls, sweep_dir: Path) -> Plan:
    path = Path(sweep_dir) / PLAN_FILE
    if not path.exists():
      raise SweepError(f"{sweep_dir} has no {PLAN_FILE}; plan it with scripts/sweep.py first.")
    saved = read_plan_file(path, required=("config", "conditions", "seeds"))
    unknown = sorted(saved.keys() - {f.name for f in dataclasses.fields(cls)})
    if unknown:
      raise SweepError(
        f"{path} has unknown entries {unknown}; it was written by another version of"
        " actlab, or edited. Plan the sweep again with scripts/sweep.py."
      )
    # A sweep planned before the config was grouped names flat fields.
    saved["conditions"] = [c | {"fields": upgrade_fields(c["fields"])} for c in saved["conditions"]]
    saved["overrides"] = upgrade_fields(saved.get("overrides", {}))
    return cls(**saved)


# What each entry of a sweep.json must be, and how to say it.
_PLAN_ENTRIES: dict[str, tuple[Callable[[Any], bool], str]] = {
  "config": (lambda v: isinstance(v, str), "a config file path"),
  "conditions": (
    lambda v: (
      isinstance(v, list)
      and all(
        isinstance(c, dict)
        and isinstance(c.get("name"), str)
        and isinstance(c.get("fields", {}), dict)
        for c in v
      )
    ),
    'a list of {"name": str, "fields": {field: value}}',
  ),
  "seeds": (
    lambda v: isinstance(v, list) and all(type(s) is int for s in v),
    "a list of integer seeds",
  ),
  "overrides": (lambda v: isinstance(v, dict), "an object {field: value}"),
  "baseline": (lambda v: v is None or isinstance(v, str), "a condition name or null"),
  "family": (
    lambda v: isinstance(v, list) and all(isinstance(f, list) for f in v),
    "a list of [condition, reference] pairs",
  ),
  "design": (lambda v: isinstance(v, dict), "an object"),
}


def read_plan_file(path: Path, required: Sequence[str] = ("conditions",)) -> dict[str, Any]:
  """The contents of a sweep.json, checked entry by entry: a `SweepError`
  naming the file and the entry when it is unreadable or not a plan."""
  redo = "Plan the sweep again with scripts/sweep.py (or restore the file)."
  try:
    saved = json.loads(Path(path).read_text())
  except (OSError, UnicodeDecodeError, ValueError) as e:
    raise SweepError(f"Cannot read the sweep plan {path}: {e}. {redo}") from None
  if not isinstance(saved, dict):
    raise SweepError(
      f"{path} is not a sweep plan: it holds a JSON {type(saved).__name__}, not an object. {redo}"
    )
  missing = [k for k in required if k not in saved]
  if missing:
    raise SweepError(
      f"{path} is not a sweep plan: it lacks {', '.join(map(repr, missing))}. {redo}"
    )
  for key, (ok, what) in _PLAN_ENTRIES.items():
    if key in saved and not ok(saved[key]):
      raise SweepError(
        f"{path} is not a sweep plan: {key!r} must be {what}, got"
        f" {json.dumps(saved[key])[:80]}. {redo}"
      )
  return saved


def load_config_module(path: str):
  """The module of `file.py[:arg]` and its argument."""
  file, _, arg = path.partition(":")
  if not Path(file).is_file():
    raise SweepError(f"Config file {file!r} does not exist.")
  spec = importlib.util.spec_from_file_location(Path(file).stem, file)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module, arg or None


def parse_seeds(text: str) -> list[int]:
  """`'5'` -> [0..4]; `'0,3,7'` or `'10-14'` -> those seeds."""
  try:
    if "," in text:
      return [int(s) for s in text.split(",") if s.strip()]
    if "-" in text.strip("-"):
      lo, hi = text.split("-")
      return list(range(int(lo), int(hi) + 1))
    n = int(text)
  except ValueError:
    raise SweepError(
      f"--seeds={text!r}: give a count (5), a list (0,3,7) or a range (10-14)."
    ) from None
  if n < 1:
    raise SweepError(f"--seeds={text!r}: the count must be at least 1.")
  return list(range(n))


def plan(
  config: str,
  overrides: dict[str, Any] | None = None,
  seeds: Sequence[int] | None = None,
  only: Sequence[str] = (),
) -> Plan:
  """The sweep of a study config file: its `sweep()` conditions x seeds.

  `sweep(config)` returns a list of {"name": ..., field: value, ...} or a
  dict {"conditions": [...], "seeds": [...], "baseline": name}. Seeds come
  from `seeds`, else the config's sweep, else the config's own seed.
  """
  module, arg = load_config_module(config)
  if not hasattr(module, "sweep"):
    raise SweepError(
      f"{config} defines no sweep(); it is a single experiment (experiments/main.py)."
    )
  base = module.get_config(arg)
  spec = module.sweep(base) if inspect.signature(module.sweep).parameters else module.sweep()
  if not isinstance(spec, dict):
    spec = {"conditions": spec}
  conditions = []
  for entry in spec["conditions"]:
    entry = dict(entry)
    name = entry.pop("name")
    conditions.append({"name": name, "fields": entry})
  names = [c["name"] for c in conditions]
  if len(set(names)) != len(names):
    raise SweepError(f"{config}: condition names repeat: {names}.")
  if only:
    unknown = sorted(set(only) - set(names))
    if unknown:
      raise SweepError(f"--only: no condition named {unknown}; the sweep has {names}.")
    conditions = [c for c in conditions if c["name"] in only]
  seeds = list(seeds or spec.get("seeds") or [int(base.seed)])
  if len(set(seeds)) != len(seeds):
    raise SweepError(f"Seeds repeat: {seeds}.")
  baseline = spec.get("baseline") or ("relu" if "relu" in names else None)
  kept = {c["name"] for c in conditions}
  family = [list(pair) for pair in spec.get("family", []) if set(pair) <= kept]
  design = {k: spec[k] for k in ("select", "factorial") if k in spec}
  config_file, _, config_arg = config.partition(":")
  config = str(Path(config_file).resolve()) + (f":{config_arg}" if config_arg else "")
  return Plan(config, conditions, seeds, dict(overrides or {}), baseline, family, design)


def set_field(config: ml_collections.ConfigDict, key: str, value: Any) -> None:
  """Sets `a.b.c` on a (possibly locked) config; unknown fields are errors."""
  group, _, last = key.rpartition(".")
  node = value_at(config, group, None) if group else config
  if (
    not isinstance(node, ml_collections.ConfigDict)
    or last not in node
    or isinstance(node[last], ml_collections.ConfigDict)
  ):
    close = closest_field(config, key)
    hint = f" Did you mean {close!r}?" if close else ""
    if isinstance(node, ml_collections.ConfigDict) and last in node:
      raise SweepError(f"{key!r} is a group of fields, not a field.{hint}")
    raise SweepError(f"Unknown config field {key!r}.{hint}")
  try:
    node[last] = value
  except TypeError as e:  # ml_collections keeps each field's type
    raise SweepError(f"config.{key}={value!r}: {e}") from None


def run_config(p: Plan, run: Run) -> ml_collections.ConfigDict:
  """The config of one run: the config file's, then the condition's fields,
  the seed, and the sweep's command-line overrides."""
  module, arg = load_config_module(p.config)
  config = module.get_config(arg)
  for key, value in {**run.fields, "seed": run.seed, **p.overrides}.items():
    set_field(config, key, value)
  return config


# ----------------------------------------------------------------------------
# One run
# ----------------------------------------------------------------------------


def run_dir(sweep_dir: Path, run: Run) -> Path:
  return Path(sweep_dir) / run.condition / f"seed_{run.seed}"


def status(sweep_dir: Path, run: Run) -> str:
  """'done', 'started' (has a checkpoint or metrics) or 'new'."""
  d = run_dir(sweep_dir, run)
  if (d / DONE_FILE).exists():
    return "done"
  if (d / "checkpoints").exists() or (d / "metrics.jsonl").exists():
    return "started"
  return "new"


def run_one(sweep_dir: Path, index: int) -> int:
  """Trains task `index` of the planned sweep (`Plan.tasks`: a run, or several
  seeds of one condition in one program) in this process; an exit code."""
  from actlab import faults, multiseed, train  # pylint: disable=g-import-not-at-top  (late)
  from actlab.workdir import WorkdirError  # pylint: disable=g-import-not-at-top

  p = Plan.load(sweep_dir)
  runs, tasks = p.runs(), p.tasks()
  if not 0 <= index < len(tasks):
    print(f"error: task index {index} is outside 0..{len(tasks) - 1}", file=sys.stderr)
    return 2
  todo = [runs[i] for i in tasks[index] if status(sweep_dir, runs[i]) != "done"]
  if not todo:
    faults.work_done()
    print(f"{', '.join(runs[i].name for i in tasks[index])}: finished before, skipped")
    return 0
  t0 = time.time()
  configs, workdirs = [run_config(p, r) for r in todo], [run_dir(sweep_dir, r) for r in todo]
  try:
    if configs[0].get("seeds_per_program", 1) == 1:
      train.train_and_evaluate(configs[0], workdirs[0])
    else:
      multiseed.train_seeds(configs, workdirs)
  except faults.Preempted as e:
    print(e, file=sys.stderr)
    return PREEMPTED_EXIT_CODE
  except WorkdirError as e:
    print(f"error: {e}", file=sys.stderr)
    return BUSY_EXIT_CODE
  for run, workdir in zip(todo, workdirs):
    summary = {"run": run.name, "seconds": time.time() - t0, **train.final_summary(workdir)}
    tmp = workdir / (DONE_FILE + ".tmp")
    tmp.write_text(json.dumps(summary, indent=2) + "\n")
    tmp.replace(workdir / DONE_FILE)
  faults.work_done()
  return 0


# ----------------------------------------------------------------------------
# Cells another sweep already trained
# ----------------------------------------------------------------------------

# Study-level fields that training does not read (the list a study sweeps).
_NOT_TRAINED = ("activations",)
# What a run's numerics depend on besides its config.
_CODE_FIELDS = ("git_commit", "git_dirty", "jax", "jaxlib", "flax", "optax", "numpy")
_SINGLE_THREADED = "--xla_cpu_multi_thread_eigen=false"


def _cell(config: dict[str, Any]) -> tuple[int, str]:
  """What decides a run's training, from its config.json: (seed, the other fields)."""
  trained = {k: v for k, v in config.items() if k not in _NOT_TRAINED}
  return trained["seed"], json.dumps(trained, sort_keys=True)


def _why_not_same(
  started: list[dict[str, Any]], code: dict[str, Any], single_threaded: bool | None
) -> str | None:
  """Why a run's provenance is not `code` run the target's way; None when it is."""
  if not started:
    return "it records no provenance"
  for line in started:
    for field in _CODE_FIELDS:
      if line.get(field) != code.get(field):
        return f"it was trained with {field}={line.get(field)!r}, not {code.get(field)!r}"
    if single_threaded is not None and "xla_flags" in line:
      if (_SINGLE_THREADED in line["xla_flags"]) != single_threaded:
        way = "single-threaded" if single_threaded else "multi-threaded"
        return f"XLA ran it with flags {line['xla_flags']!r}; this sweep runs XLA {way}"
  return None


def reuse_finished(
  sweep_dir: Path,
  sources: Sequence[Path],
  single_threaded: bool | None = None,
) -> dict[str, list[str]]:
  """Copies into a planned sweep the finished runs other sweeps trained with
  the same config, so studies that share cells train them once.

  A run of this sweep is taken from a source sweep when the source has a
  finished run at the same seed whose config.json equals, field for field,
  the config this sweep would train (only `activations`, a study's list of
  conditions, may differ), and whose provenance names, at every start and
  resume, the git commit and the jax, jaxlib, flax, optax and numpy versions
  of the code running now; where the source recorded its XLA flags, XLA
  must also have run single-threaded exactly when `single_threaded` (None:
  not checked). Then the copy is the run this sweep would train: same
  initialisation, data order, code and order of float sums.

  The copy has the source's metrics, log, events and provenance (no
  checkpoints: it is finished), this sweep's config.json, and a done.json
  naming this run and the source (`reused_from`, relative to the folder that
  holds this sweep). Runs that have started or finished are left alone.
  Returns run names by outcome: reused, kept, no match, other code.
  """
  from actlab import workdir  # pylint: disable=g-import-not-at-top  (imports jax)

  sweep_dir = Path(sweep_dir)
  plan = Plan.load(sweep_dir)
  code = workdir.code_version()
  if not code.get("git_commit") or code.get("git_dirty"):
    raise SweepError(
      "--reuse needs actlab imported from a clean git checkout: otherwise whether a source"
      " run was trained by this code cannot be checked. Commit the changes to actlab/, or"
      " train the runs."
    )
  available: dict[tuple[int, str], Path] = {}
  for source in map(Path, sources):
    if not (source / PLAN_FILE).exists():
      raise SweepError(f"--reuse={source}: no {PLAN_FILE} there; give a sweep's folder.")
    for done in sorted(source.glob(f"*/seed_*/{DONE_FILE}")):
      cell = _cell(json.loads((done.parent / "config.json").read_text()))
      available.setdefault(cell, done.parent)
  outcome: dict[str, list[str]] = {k: [] for k in ("reused", "kept", "no match", "other code")}
  for run in plan.runs():
    dest = run_dir(sweep_dir, run)
    if status(sweep_dir, run) != "new" or (dest.exists() and any(dest.iterdir())):
      outcome["kept"].append(run.name)
      continue
    config = run_config(plan, run)
    # Through JSON, as config.json holds it (tuples become lists).
    source_dir = available.get(_cell(json.loads(json.dumps(workdir.resolved_config(config)))))
    if source_dir is None:
      outcome["no match"].append(run.name)
      continue
    why = _why_not_same(workdir.read_provenance(source_dir), code, single_threaded)
    if why:
      outcome["other code"].append(f"{run.name} ({source_dir}: {why})")
      continue
    outcome["reused"].append(f"{run.name} <- {source_dir}")
    _copy_finished_run(source_dir, dest, run, config)
  return outcome


def _copy_finished_run(source_dir: Path, dest: Path, run: Run, config) -> None:
  """The finished run at `source_dir` as `dest`, which appears whole or not at all."""
  from actlab import workdir  # pylint: disable=g-import-not-at-top

  tmp = dest.with_name(dest.name + ".reusing")
  shutil.rmtree(tmp, ignore_errors=True)
  tmp.mkdir(parents=True)
  for path in source_dir.iterdir():
    if path.name in ("metrics.jsonl", "log.txt", workdir.PROVENANCE_FILE) or (
      path.name.startswith("events.out.tfevents.")
    ):
      shutil.copy2(path, tmp / path.name)
  workdir.write_config(config, tmp)
  done = json.loads((source_dir / DONE_FILE).read_text())
  # Relative to the folder that holds both sweeps, so the record survives a move.
  done.update(run=run.name, reused_from=os.path.relpath(source_dir, dest.parents[2]))
  (tmp / DONE_FILE).write_text(json.dumps(done, indent=2) + "\n")
  if dest.exists():  # empty (checked by reuse_finished): nothing to lose
    dest.rmdir()
  tmp.replace(dest)


# ----------------------------------------------------------------------------
# Local executor
# ----------------------------------------------------------------------------


def _die_with_parent() -> None:
  """In a worker, before exec: SIGTERM when the sweep process dies (Linux)."""
  try:
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
  except OSError:
    pass


def resolve_workers(workers: str | int) -> int:
  if workers == "auto":
    return max(len(available_cores()), 1) if available_cores() else (os.cpu_count() or 1)
  try:
    n = int(workers)
  except ValueError:
    raise SweepError(f"--workers={workers!r}: give a number or 'auto'.") from None
  if n < 1:
    raise SweepError(f"--workers={workers!r}: at least 1.")
  return n


def pins(workers: int) -> bool:
  """Whether a local sweep of `workers` pins each worker to its own core(s),
  XLA single-threaded: when there are several and enough cores for them."""
  return workers > 1 and len(available_cores()) >= workers


def core_slots(cores: list[int], workers: int) -> list[list[int]]:
  """The cores of each of `workers` concurrent workers: disjoint, round-robin."""
  return [cores[k::workers] for k in range(workers)]


def pinned_worker(
  cpus: list[int] | None, environ: Mapping[str, str]
) -> tuple[dict[str, str], Callable[[], None]]:
  """A worker's environment and pre-exec hook, pinned to `cpus` unless None.

  A pinned worker runs XLA single-threaded on its own core(s), so workers
  never oversubscribe the machine; every worker dies with the sweep process.
  """
  env = dict(environ)
  if cpus is not None:
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false").strip()

  def pre() -> None:
    # SIGTERM waits until the worker has its handler (exit_at_once_on_sigterm
    # unblocks it): a worker stopped while Python starts still exits with 75.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    _die_with_parent()
    if cpus is not None:
      os.sched_setaffinity(0, cpus)

  return env, pre


def worker_command(sweep_dir: Path, index: int) -> list[str]:
  return [sys.executable, "-m", "actlab.sweep", "run", str(sweep_dir), f"--index={index}"]


def run_local(sweep_dir: Path, workers: int, pin: bool | None = None) -> dict[str, list[str]]:
  """Runs every unfinished run of the planned sweep, `workers` at a time.

  With `pin` (default: when several workers share this machine's cores), the
  k-th concurrent worker is pinned to its own core(s). Returns the run names
  by outcome: done, skipped, preempted, busy, failed.
  """
  sweep_dir = Path(sweep_dir).resolve()
  p = Plan.load(sweep_dir)
  runs, tasks = p.runs(), p.tasks()
  cores = available_cores()
  pin = pins(workers) if pin is None else pin
  slots = core_slots(cores, workers) if pin else [None] * workers
  outcome: dict[str, list[str]] = {
    k: [] for k in ("done", "skipped", "preempted", "busy", "failed")
  }
  todo = []  # task indices
  for t, task in enumerate(tasks):
    finished = [runs[i].name for i in task if status(sweep_dir, runs[i]) == "done"]
    outcome["skipped"] += finished
    if len(finished) < len(task):
      todo.append(t)

  def names(t: int) -> list[str]:
    return [runs[i].name for i in tasks[t] if runs[i].name not in outcome["skipped"]]

  print(
    f"sweep {sweep_dir}: {len(runs)} runs, {len(outcome['skipped'])} finished before,"
    f" {len(todo)} to run on {workers} worker(s)" + (" pinned to cores" if pin else ""),
    flush=True,
  )
  active: dict[int, tuple[subprocess.Popen, int, Any]] = {}  # slot -> (proc, index, log)
  stopping = []

  def on_signal(signum, _frame):
    stopping.append(signum)
    for proc, _, _ in active.values():
      proc.send_signal(signal.SIGTERM)

  old = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
  try:
    while todo or active:
      free = [s for s in range(workers) if s not in active]
      while todo and free and not stopping:
        slot, index = free.pop(0), todo.pop(0)
        d = run_dir(sweep_dir, runs[tasks[index][0]])  # a task's log: in its first run's folder
        d.mkdir(parents=True, exist_ok=True)
        log = open(d / LOG_FILE, "a")  # noqa: SIM115  (closed when the worker ends)
        cpus = slots[slot]
        env, pre = pinned_worker(cpus, os.environ)
        proc = subprocess.Popen(
          worker_command(sweep_dir, index),
          stdout=log,
          stderr=subprocess.STDOUT,
          env=env,
          preexec_fn=pre,
        )
        active[slot] = (proc, index, log)
        where = f" on core(s) {cpus}" if cpus else ""
        print(f"  start {', '.join(names(index))}{where}", flush=True)
      if stopping and not active:
        break
      time.sleep(0.2)
      for slot, (proc, index, log) in list(active.items()):
        code = proc.poll()
        if code is None:
          continue
        log.close()
        del active[slot]
        kind = {0: "done", PREEMPTED_EXIT_CODE: "preempted", BUSY_EXIT_CODE: "busy"}.get(
          code, "failed"
        )
        outcome[kind] += names(index)
        log_file = run_dir(sweep_dir, runs[tasks[index][0]]) / LOG_FILE
        print(
          f"  {kind:9s} {', '.join(names(index))} (exit {code}; log: {log_file})",
          flush=True,
        )
  finally:
    for s, handler in old.items():
      signal.signal(s, handler)
  if stopping:
    outcome["preempted"] += [name for t in todo for name in names(t)]
  return outcome


# ----------------------------------------------------------------------------
# SLURM
# ----------------------------------------------------------------------------

# Every value placed into the script is quoted (shlex.quote) where bash reads
# it. `#SBATCH` lines are read by sbatch, not bash, and do not take quoted
# paths: the output path goes on sbatch's command line instead (`sbatch_argv`).
_SBATCH = """#!/bin/bash
# One array task per task of a sweep (a run, or seeds_per_program seeds of a
# condition); finished runs exit at once, preempted ones (exit 75, after
# saving) are requeued and resume. Submit it with
#   {submit}
#SBATCH --job-name={job_name}
#SBATCH --array=0-{last}{throttle}
#SBATCH --requeue
#SBATCH --signal=B:TERM@120
{extra}
set -u
cd {cwd}
{python} -m actlab.sweep run {sweep_dir} --index="$SLURM_ARRAY_TASK_ID" &
pid=$!
# SIGTERM (preemption, or --signal above) goes to actlab, which saves and exits 75.
trap 'kill -TERM "$pid"' TERM
wait "$pid"; status=$?
if [ "$status" -gt 128 ]; then wait "$pid"; status=$?; fi
if [ "$status" -eq 75 ]; then
  scontrol requeue "${{SLURM_ARRAY_JOB_ID}}_${{SLURM_ARRAY_TASK_ID}}"
fi
exit "$status"
"""


def _one_line(what: str, text: str) -> str:
  """`text`, refused if it would break out of its line of the script."""
  if any(ord(c) < 32 or ord(c) == 127 for c in text):
    raise SweepError(
      f"{what} {text!r} holds a line break or control character, which a SLURM"
      " script cannot carry; use another name."
    )
  return text


def sbatch_argv(script: Path) -> list[str]:
  """The sbatch command for a script of `write_slurm`: the task logs go to
  SWEEP/slurm/%A_%a.out."""
  return ["sbatch", f"--output={script.parent / '%A_%a.out'}", str(script)]


def write_slurm(
  sweep_dir: Path,
  sbatch_options: Sequence[str] = (),
  max_parallel: int = 0,
  python: str = sys.executable,
) -> Path:
  """Writes SWEEP/slurm/sweep.sbatch: a job array over the planned runs."""
  sweep_dir = Path(sweep_dir).resolve()
  tasks = Plan.load(sweep_dir).tasks()
  (sweep_dir / "slurm").mkdir(parents=True, exist_ok=True)
  script = sweep_dir / "slurm" / "sweep.sbatch"
  for what, text in (
    ("The sweep directory", str(sweep_dir)),
    ("The working directory", str(Path.cwd())),
    ("The Python", python),
    *(("The sbatch option", o) for o in sbatch_options),
  ):
    _one_line(what, text)
  extra = "\n".join(f"#SBATCH {o if o.startswith('--') else '--' + o}" for o in sbatch_options)
  script.write_text(
    _SBATCH.format(
      submit=shlex.join(sbatch_argv(script)),
      # A job name is a label: anything but letters, digits and ._- becomes _.
      job_name=re.sub(r"[^A-Za-z0-9._-]", "_", f"actlab-{sweep_dir.name}"),
      last=len(tasks) - 1,
      throttle=f"%{max_parallel}" if max_parallel else "",
      extra=extra,
      cwd=shlex.quote(str(Path.cwd())),
      python=shlex.quote(python),
      sweep_dir=shlex.quote(str(sweep_dir)),
    )
  )
  script.chmod(0o755)
  return script


def submit_slurm(script: Path) -> str:
  """Submits the array with sbatch; returns sbatch's output."""
  try:
    out = subprocess.run(sbatch_argv(script), capture_output=True, text=True, check=True)
  except FileNotFoundError:
    raise SweepError(f"sbatch is not on PATH; submit {script} from a SLURM login node.") from None
  except subprocess.CalledProcessError as e:
    raise SweepError(f"sbatch {script} failed: {e.stderr.strip()}") from None
  return out.stdout.strip()


def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(
    prog="python -m actlab.sweep", description="Runs one run of a planned sweep."
  )
  sub = parser.add_subparsers(dest="command", required=True)
  r = sub.add_parser("run", help="train run --index of the sweep in SWEEP")
  r.add_argument("sweep_dir", type=Path)
  r.add_argument("--index", type=int, required=True)
  args = parser.parse_args(argv)
  try:
    return run_one(args.sweep_dir, args.index)
  except (SweepError, ValueError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 1


if __name__ == "__main__":
  # Saved, done or failed: leave without Python's teardown, which puts
  # SIGTERM's default back (143), and without waiting for a download's threads.
  _faults.exit_now(main())
