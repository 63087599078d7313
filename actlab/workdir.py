"""Workdir safety: one run at a time, and no silent change of experiment."""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Any

import ml_collections

from actlab import activations

# Fields that change the model, the data or the optimisation: resuming a
# workdir with other values would silently mix two experiments.
RESUME_FIELDS = (
  "activation",
  "dtype",
  "seed",
  "train_split",
  "eval_split",
  "input_scaling",
  "batch_size",
  "optimizer",
  "learning_rate",
  "adam_b1",
  "adam_b2",
  "adam_eps",
  "weight_decay",
  "momentum",
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
    fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
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


def resolved_config(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """The config as saved in config.json: plain values, canonical activation."""
  resolved = config.to_dict()
  resolved["activation"] = activations.canonical(config.activation)
  return resolved


def config_diff(saved: dict[str, Any], requested: dict[str, Any]) -> list[str]:
  """`field: saved -> requested` for every resume-relevant field that differs."""
  return [
    f"  {k}: {saved.get(k)!r} -> {requested.get(k)!r}"
    for k in RESUME_FIELDS
    if saved.get(k) != requested.get(k)
  ]


def check_and_write_config(
  config: ml_collections.ConfigDict, workdir: Path, allow_change: bool = False
) -> None:
  """Refuses a workdir whose saved config disagrees; then writes config.json."""
  requested = resolved_config(config)
  path = workdir / "config.json"
  if path.exists() and not allow_change:
    saved = json.loads(path.read_text())
    diff = config_diff(saved, requested)
    if diff:
      raise WorkdirError(
        f"{workdir} holds a run with a different config:\n"
        + "\n".join(diff)
        + "\nUse another --workdir, or pass --allow_config_change to continue"
        " this run with the new values."
      )
  tmp = path.with_suffix(".json.tmp")
  tmp.write_text(json.dumps(requested, indent=2, sort_keys=True) + "\n")
  tmp.replace(path)  # atomic: a crash never leaves half a config.json
