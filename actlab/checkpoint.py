"""Orbax checkpoints of the train state, restored automatically from a workdir."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp


class CheckpointError(RuntimeError):
  """A checkpoint could not be saved or restored; the message says what to do."""


class Checkpoints:
  """Saves and restores pytrees under `workdir/checkpoints/<step>`.

  Saves are asynchronous: `save` blocks only while arrays are copied off the
  device; `close()` waits until the last one is committed. Orbax writes each
  checkpoint to a temporary folder and renames it when complete, so a process
  killed mid-save leaves no checkpoint that looks finished.
  """

  def __init__(self, workdir: str | os.PathLike, max_to_keep: int = 3):
    self.directory = Path(workdir).absolute() / "checkpoints"
    self._manager = ocp.CheckpointManager(
      self.directory,
      options=ocp.CheckpointManagerOptions(
        max_to_keep=max_to_keep, enable_async_checkpointing=True, create=True
      ),
    )
    self.seconds_blocked = 0.0  # time the training loop spent inside save()

  def steps(self) -> list[int]:
    return sorted(self._manager.all_steps())

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def _failed(self, step: int, e: Exception) -> CheckpointError:
    done = [s for s in self.steps() if s != step]
    last = f"step {done[-1]}, the last checkpoint saved" if done else "the start"
    return CheckpointError(
      f"Could not save the checkpoint for step {step} in {self.directory}:"
      f" {type(e).__name__}: {e}. Free space (or fix the folder) and rerun the"
      f" same command: the run resumes from {last}, which is intact."
    )

  def save(self, step: int, state: Any) -> None:
    t = time.perf_counter()
    try:
      self._manager.save(step, args=ocp.args.StandardSave(state))
    except Exception as e:  # orbax surfaces I/O errors in several types
      raise self._failed(step, e) from e
    finally:
      self.seconds_blocked += time.perf_counter() - t

  def wait(self) -> None:
    """Blocks until every started save is committed."""
    try:
      self._manager.wait_until_finished()
    except Exception as e:
      raise self._failed(self.latest_step() or -1, e) from e

  def restore_latest(self, like: Any) -> tuple[int, Any] | None:
    """Restores the newest checkpoint that reads back, shaped like `like`.

    A checkpoint that fails to read (truncated or corrupted files) is skipped
    with a warning and the one before it is tried. Returns (step, state), or
    None when there is no checkpoint.
    """
    steps = self.steps()
    if not steps:
      return None
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
    errors = []
    for step in reversed(steps):
      try:
        restored = self._manager.restore(step, args=ocp.args.StandardRestore(abstract))
      except Exception as e:  # a damaged checkpoint fails in many ways
        logging.warning(
          "Checkpoint %d in %s is unreadable (%s: %s); trying the previous one.",
          step,
          self.directory,
          type(e).__name__,
          e,
        )
        errors.append(f"step {step}: {type(e).__name__}: {e}")
        continue
      if errors:
        logging.warning("Resumed from checkpoint %d instead of %d.", step, steps[-1])
      return step, restored
    raise CheckpointError(
      f"No checkpoint in {self.directory} could be restored:\n  "
      + "\n  ".join(errors)
      + f"\nMove {self.directory} away to start the run afresh."
    )

  def close(self) -> None:
    try:
      self.wait()
    finally:
      self._manager.close()
