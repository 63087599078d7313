"""Workdir safety: one run at a time, and no silent change of experiment."""

from __future__ import annotations

import datetime
import fcntl
import functools
import hashlib
import importlib.metadata
import json
import logging
import os
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

import ml_collections

from actlab import activations
from actlab import config as config_lib

# What may change when a run is continued: logging, checkpointing, the
# non-finite policy, diagnostics and where the data is read from, none of
# which changes what is computed. Dotted paths; a group name covers the whole
# group. Everything else (the model, optim and data groups, the seed, the
# batch size, ...) must match the saved config.json.
MAY_CHANGE_ON_RESUME = frozenset(
  {
    "num_epochs",  # training longer is a continuation; config.json keeps the maximum
    "log_every_steps",
    "keep_checkpoints",
    "checkpoint_every_steps",
    "nonfinite_policy",
    "max_consecutive_skips",
    "seeds_per_program",  # the same data order and steps, in one program or apart
    "seed_batching",  # likewise
    "diagnostics",
    "data.data_dir",
    "data.download",
    "data.archive",
  }
)


class WorkdirError(RuntimeError):
  """The workdir cannot be used as asked; the message says why and what to do."""


class WorkdirLock:
  """An exclusive `flock` on `workdir/.lock`, released on any exit.

  The kernel drops the lock when the process dies, even by SIGKILL, so a
  crashed run never leaves a stale lock behind.
  """

  def __init__(self, workdir: Path):
    self.path = workdir / ".lock"
    self._fd: int | None = None

  def __enter__(self) -> WorkdirLock:
    try:
      fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
      raise WorkdirError(
        f"Cannot create {self.path}: {e.strerror or e}. Pass a workdir you can write to."
      ) from None
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
      os.close(fd)
      raise WorkdirError(
        f"Another run (pid {holder}) is using {self.path.parent}. Wait for it"
        " to finish, or use another --workdir."
      ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    self._fd = fd
    return self

  def __exit__(self, *exc) -> None:
    if self._fd is not None:
      fcntl.flock(self._fd, fcntl.LOCK_UN)
      os.close(self._fd)
      self._fd = None


def free_space(path: str | os.PathLike) -> str:
  """`'N MiB free on the filesystem of PATH.'`, for error messages about a full disk."""
  path = Path(path)
  probe = next((p for p in (path, *path.parents) if p.exists()), path)
  try:
    free = shutil.disk_usage(probe).free
  except OSError:
    return f"The free space on the filesystem of {path} is unknown."
  return f"{free / 2**20:,.1f} MiB free on the filesystem of {path}."


def prepare_workdir(workdir: str | os.PathLike) -> Path:
  """`workdir` with `~` expanded, created if missing; refuses unusable ones.

  An empty path (an unset `$WORKDIR` in `--workdir=$WORKDIR`) is refused
  rather than taken to mean the current directory.
  """
  if not os.fspath(workdir).strip():
    raise WorkdirError(
      "The workdir is empty (was --workdir=$WORKDIR with WORKDIR unset?); pass"
      " the directory for this run, e.g. --workdir=/tmp/actlab/run1."
    )
  path = Path(workdir).expanduser()
  try:
    path.mkdir(parents=True, exist_ok=True)
  except FileExistsError:
    raise WorkdirError(f"The workdir {path} exists and is not a directory.") from None
  except OSError as e:
    raise WorkdirError(
      f"Cannot create the workdir {path}: {e.strerror or e}. Pass a directory you can write to."
    ) from None
  if not path.is_dir():
    raise WorkdirError(f"The workdir {path} exists and is not a directory.")
  if not os.access(path, os.W_OK | os.X_OK):
    raise WorkdirError(f"The workdir {path} is not writable. Pass a directory you can write to.")
  return path


def _canonical_activations(tree: Any) -> Any:
  if isinstance(tree, dict):
    return {
      k: activations.canonical(v)
      if k == "activation" and isinstance(v, str)
      else _canonical_activations(v)
      for k, v in tree.items()
    }
  return tree


def resolved_config(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """The config as saved in config.json: plain values, canonical activation."""
  return _canonical_activations(config.to_dict())


def may_change_on_resume(path: str) -> bool:
  """Whether the field at dotted `path` (or its group) is in `MAY_CHANGE_ON_RESUME`."""
  parts = path.split(".")
  return any(".".join(parts[:i]) in MAY_CHANGE_ON_RESUME for i in range(1, len(parts) + 1))


def config_diff(saved: dict[str, Any], requested: dict[str, Any]) -> list[str]:
  """`group.field: saved -> requested` for every field that changes the computation.

  Compares whole groups (model, optim, data, and the loop's own fields),
  field by field; a config.json from before the groups is regrouped first
  (`config.upgrade`). A field the saved config does not have at all was added
  to actlab later and is not compared.
  """
  saved_flat = config_lib.flatten(config_lib.upgrade(saved))
  diff = []
  for k, want in sorted(config_lib.flatten(requested).items()):
    if may_change_on_resume(k) or k not in saved_flat:
      continue
    if saved_flat[k] != want:
      diff.append(f"  {k}: {saved_flat[k]!r} -> {want!r}")
  return diff


def _num_epochs_trained(saved: dict[str, Any], requested: dict[str, Any]) -> dict[str, Any]:
  """`requested` with every `num_epochs` raised to the saved value if that was larger."""
  out = {}
  for k, v in requested.items():
    if isinstance(v, dict):
      out[k] = _num_epochs_trained(saved.get(k) if isinstance(saved.get(k), dict) else {}, v)
    elif k == "num_epochs" and isinstance(saved.get(k), int) and isinstance(v, int):
      out[k] = max(v, saved[k])
    else:
      out[k] = v
  return out


# The config of the run the checkpoints belong to, kept with them, so that a
# deleted or replaced config.json cannot make another run resume them.
CHECKPOINT_CONFIG = Path("checkpoints") / "run_config.json"


def config_digest(config: dict[str, Any]) -> str:
  """SHA-256 of the fields of a resolved config that must match on resume."""
  kept = {k: v for k, v in config_lib.flatten(config).items() if not may_change_on_resume(k)}
  return hashlib.sha256(json.dumps(kept, sort_keys=True, default=str).encode()).hexdigest()


def _checkpoint_config(workdir: Path) -> dict[str, Any] | None:
  """The config recorded with the checkpoints, when it fits its digest."""
  path = workdir / CHECKPOINT_CONFIG
  if not path.exists() or not has_checkpoint(workdir):
    return None
  try:
    record = json.loads(path.read_text())
    config = record["config"]
    if record["digest"] != config_digest(config):
      raise ValueError("the digest does not match the config")
  except (OSError, ValueError, KeyError, TypeError) as e:
    raise WorkdirError(
      f"{path} is damaged ({e}). It names the run the checkpoints belong to;"
      " pass --allow_config_change if you know the config matches, or use another --workdir."
    ) from None
  return config


def _saved_config(workdir: Path) -> dict[str, Any] | None:
  path = workdir / "config.json"
  if not path.exists():
    return _checkpoint_config(workdir)
  try:
    saved = json.loads(path.read_text())
  except (OSError, ValueError) as e:
    raise WorkdirError(
      f"{path} is unreadable ({e}). Restore it, or use another --workdir."
    ) from None
  return saved if isinstance(saved, dict) else None


def has_checkpoint(workdir: Path) -> bool:
  """Whether `workdir` holds a checkpoint a run would resume from (a step folder)."""
  folder = workdir / "checkpoints"
  return folder.is_dir() and any(p.name.isdigit() for p in folder.iterdir())


def check_config(
  config: ml_collections.ConfigDict, workdir: Path, allow_change: bool = False
) -> None:
  """Refuses a workdir whose saved config differs in a field that changes the run.

  A workdir without a checkpoint resumes nothing: its run stopped before the
  first save (diverged, say), and the new config starts afresh, with a warning.
  """
  if allow_change:
    return
  saved = _saved_config(workdir)
  if saved is None:
    return
  diff = config_diff(saved, resolved_config(config))
  if diff and not has_checkpoint(workdir):
    logging.warning(
      "%s holds no checkpoint to resume; starting afresh with the new config:\n%s",
      workdir,
      "\n".join(diff),
    )
    return
  if diff:
    raise WorkdirError(
      f"{workdir} holds a run with a different config"
      + ("" if (workdir / "config.json").exists() else f" (recorded in {CHECKPOINT_CONFIG})")
      + ":\n"
      + "\n".join(diff)
      + "\nUse another --workdir, or pass --allow_config_change to continue"
      " this run with the new values."
    )


def write_config(config: ml_collections.ConfigDict, workdir: Path) -> None:
  """Writes config.json atomically; `num_epochs` records the longest requested."""
  path = workdir / "config.json"
  try:
    saved = _saved_config(workdir) or {}
  except WorkdirError:  # replaced now, as --allow_config_change asked
    saved = {}
  requested = _num_epochs_trained(saved, resolved_config(config))
  record = {"digest": config_digest(requested), "config": requested}
  try:
    _write_atomically(path, requested)
    (workdir / CHECKPOINT_CONFIG).parent.mkdir(exist_ok=True)
    _write_atomically(workdir / CHECKPOINT_CONFIG, record)
  except OSError as e:
    raise WorkdirError(
      f"Could not write {path}: {e.strerror or e}. {free_space(workdir)}"
    ) from None


def _write_atomically(path: Path, value: Any) -> None:
  """JSON to `path` through a temporary file: a crash never leaves half a file."""
  tmp = path.with_suffix(".json.tmp")
  tmp.write_text(json.dumps(value, indent=2, sort_keys=True) + "\n")
  tmp.replace(path)


def check_and_write_config(
  config: ml_collections.ConfigDict, workdir: Path, allow_change: bool = False
) -> None:
  """`check_config`, then `write_config`."""
  check_config(config, workdir, allow_change)
  write_config(config, workdir)


PROVENANCE_FILE = "provenance.jsonl"


@functools.cache
def code_version() -> dict[str, Any]:
  """actlab's version and git commit, and the versions of what computes.

  `git_commit` is None when actlab is not imported from a git checkout (an
  installed wheel); `git_dirty` says whether tracked files differed from it.
  """
  import actlab  # pylint: disable=g-import-not-at-top  (the package's own version)

  here = Path(actlab.__file__).resolve().parent
  commit, dirty = None, None
  try:
    git = ["git", "-C", str(here.parent)]
    top = subprocess.run(
      [*git, "rev-parse", "--show-toplevel"], capture_output=True, text=True, timeout=10
    )
    if top.returncode == 0 and Path(top.stdout.strip()) == here.parent:
      commit = (
        subprocess.run(
          [*git, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
        or None
      )
      status = subprocess.run(
        [*git, "status", "--porcelain", "--untracked-files=no", "--", "actlab"],
        capture_output=True,
        text=True,
        timeout=30,
      )
      dirty = bool(status.stdout.strip()) if status.returncode == 0 else None
  except (OSError, subprocess.SubprocessError):
    pass
  packages = {}
  for name in ("jax", "jaxlib", "flax", "optax", "numpy"):
    try:
      packages[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      packages[name] = None
  return {"actlab": actlab.__version__, "git_commit": commit, "git_dirty": dirty, **packages}


def execution() -> dict[str, Any]:
  """How XLA runs here, which also decides the order of float sums: the
  backend, the cores this process may use and the XLA flags (a sweep worker
  runs single-threaded on one core; a lone run lets XLA use every core)."""
  import jax  # pylint: disable=g-import-not-at-top  (workdir is imported before jax is needed)

  cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
  return {
    "platform": jax.default_backend(),
    "cpus": cpus,
    "xla_flags": os.environ.get("XLA_FLAGS", ""),
  }


def record_provenance(workdir: Path, start_step: int) -> None:
  """Appends one line per start or resume of the run: the code that ran it,
  and how XLA ran it (`execution`).

  A run continued by other code shows two commits here, so a study can
  check that it never mixes code versions.
  """
  line = {
    "start_step": int(start_step),
    "time": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    "host": socket.gethostname(),
    **code_version(),
    **execution(),
  }
  try:
    with open(workdir / PROVENANCE_FILE, "a") as f:
      f.write(json.dumps(line, sort_keys=True) + "\n")
  except OSError as e:
    raise WorkdirError(
      f"Could not write {workdir / PROVENANCE_FILE}: {e.strerror or e}. {free_space(workdir)}"
    ) from None


def read_provenance(workdir: str | os.PathLike) -> list[dict[str, Any]]:
  """The lines of a run's provenance.jsonl; [] for runs made before it existed."""
  path = Path(workdir) / PROVENANCE_FILE
  if not path.exists():
    return []
  out = []
  for line in path.read_text().splitlines():
    try:
      out.append(json.loads(line))
    except json.JSONDecodeError:
      continue  # a line torn by a crash
  return out
