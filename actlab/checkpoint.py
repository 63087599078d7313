"""Orbax checkpoints of the train state, restored automatically from a workdir."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from actlab import distributed
from actlab.workdir import free_space

# Step folders that could not be used are renamed with this suffix, so that
# orbax no longer lists them and the run can save those step numbers again.
UNUSABLE_SUFFIX = ".unusable"


# orbax's own log of a failed save, in the workdir (see `_OrbaxLog`).
LOG_FILE = "orbax.log"


class _OrbaxLog(logging.Filter):
  """While a run saves: orbax's log records, and the tracebacks its
  background threads print when a save fails ("Event loop is closed", a
  hundred or more when the disk fills), go to WORKDIR/orbax.log, not the console.

  orbax logs through absl's logger; the tracebacks come from callbacks that
  tensorstore runs on its own threads after orbax closed their event loop,
  printed through `sys.unraisablehook`. Everything else passes through unchanged.
  """

  def __init__(self, path: Path):
    super().__init__()
    self.path = path
    self._handler = logging.FileHandler(path, delay=True, encoding="utf-8")
    self._handler.setFormatter(
      logging.Formatter(
        "%(asctime)s %(levelname)s %(threadName)s %(pathname)s:%(lineno)d] %(message)s"
      )
    )
    self._hook = None

  def filter(self, record: logging.LogRecord) -> bool:
    if "/orbax/" not in record.pathname.replace(os.sep, "/"):
      return True
    self._handler.handle(record)
    return False

  def _unraisablehook(self, unraisable: Any) -> None:
    tb = unraisable.exc_traceback
    if "call_soon_threadsafe" in [f.name for f in traceback.extract_tb(tb)]:
      self._handler.acquire()  # whole tracebacks, between whole records
      try:
        with open(self.path, "a", encoding="utf-8") as f:
          f.writelines(traceback.format_exception(unraisable.exc_type, unraisable.exc_value, tb))
      finally:
        self._handler.release()
      return
    (self._hook or sys.__unraisablehook__)(unraisable)

  def install(self) -> None:
    if self._hook is None:
      logging.getLogger("absl").addFilter(self)
      self._hook, sys.unraisablehook = sys.unraisablehook, self._unraisablehook

  def uninstall(self) -> None:
    if self._hook is not None:
      logging.getLogger("absl").removeFilter(self)
      if sys.unraisablehook == self._unraisablehook:
        sys.unraisablehook = self._hook
      self._hook = None
    self._handler.close()


class CheckpointError(RuntimeError):
  """A checkpoint could not be saved or restored; the message says what to do."""


class DigestMismatchError(CheckpointError):
  """A restored checkpoint differs from what was saved (bit rot, a bad disk)."""


def digests(tree: Any) -> dict[str, str]:
  """SHA-256 of every array in `tree` (this process's copy), by tree path."""
  out = {}
  for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
    a = np.ascontiguousarray(distributed.local_value(leaf))
    h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    h.update(a.view(np.uint8).reshape(-1) if a.size else b"")
    out[jax.tree_util.keystr(path)] = h.hexdigest()
  return out


def _short(e: Exception, limit: int = 300) -> str:
  """`Type: first line of the message`, cut to `limit` characters; with the
  system's reason at the end when tensorstore names one only deep inside it."""
  text = str(e).strip().splitlines()
  line = f"{type(e).__name__}: {text[0] if text else ''}"
  code = re.search(r"os_error_code='?(\d+)", str(e))
  reason = f" ({os.strerror(int(code.group(1)))})" if code else ""
  limit -= len(reason)
  return (line if len(line) <= limit else line[: limit - 3] + "...") + reason


class Checkpoints:
  """Saves and restores pytrees under `workdir/checkpoints/<step>`.

  Saves are asynchronous: `save` blocks only while arrays are copied off the
  device; `close()` waits until the last one is committed. Orbax writes each
  checkpoint to a temporary folder and renames it when complete, so a process
  killed mid-save leaves no checkpoint that looks finished. The SHA-256 of
  every array goes to `checkpoints/digests/<step>.json` before the save
  starts and is checked on restore, so silent corruption on disk is caught.
  """

  def __init__(self, workdir: str | os.PathLike, max_to_keep: int = 3):
    self.directory = Path(workdir).absolute() / "checkpoints"
    self.digest_dir = self.directory / "digests"
    self._max_to_keep = max_to_keep
    self._manager = self._new_manager()
    self.seconds_blocked = 0.0  # time the training loop spent inside save()
    # The step of the save running in the background: an error of an async
    # save surfaces in a later call, and must name this step, not that call's.
    self._in_flight: int | None = None
    name = LOG_FILE if distributed.is_lead() else f"orbax.{jax.process_index()}.log"
    self._orbax_log = _OrbaxLog(self.directory.parent / name)

  def _new_manager(self) -> ocp.CheckpointManager:
    return ocp.CheckpointManager(
      self.directory,
      options=ocp.CheckpointManagerOptions(
        max_to_keep=self._max_to_keep, enable_async_checkpointing=True, create=True
      ),
    )

  def _reset_manager(self) -> None:
    """A fresh manager: orbax caches the step list and the item layout it saw."""
    try:
      self._manager.close()
    except Exception as e:  # a manager left broken by a failed restore
      logging.debug("Closing the checkpoint manager failed: %s", e)
    self._manager = self._new_manager()

  def steps(self) -> list[int]:
    return sorted(self._manager.all_steps())

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def _failed(self, step: int, e: Exception) -> CheckpointError:
    done = [s for s in self.steps() if s != step]
    last = f"step {done[-1]}, the last checkpoint saved" if done else "the start"
    log = self._orbax_log.path
    return CheckpointError(
      f"Could not save the checkpoint for step {step} in {self.directory}:"
      f" {_short(e)}. {free_space(self.directory)} Free space (or fix the folder)"
      f" and rerun the same command: the run resumes from {last}, which is intact."
      + (f" orbax's own report of the failure is in {log}." if log.exists() else "")
    )

  def _write_digests(self, step: int, tree: Any) -> None:
    if not distributed.is_lead() or step in self.steps():
      return  # orbax refuses to overwrite a step; keep that step's digests
    self.digest_dir.mkdir(parents=True, exist_ok=True)
    path = self.digest_dir / f"{step}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(digests(tree), indent=0, sort_keys=True))
    tmp.replace(path)
    kept = self.steps()
    for old in self.digest_dir.glob("*.json"):  # checkpoints orbax has deleted
      if old.stem.isdigit() and kept and int(old.stem) < kept[0]:
        old.unlink(missing_ok=True)

  def save(self, step: int, state: Any) -> None:
    t = time.perf_counter()
    self._orbax_log.install()
    try:
      # orbax waits for the previous save before starting one; waiting here
      # first costs nothing and attributes its failure to its own step.
      self.wait()
      try:
        self._write_digests(step, state)
        self._manager.save(step, args=ocp.args.StandardSave(state))
      except Exception as e:  # orbax surfaces I/O errors in several types
        raise self._failed(step, e) from e
      self._in_flight = step
    finally:
      self.seconds_blocked += time.perf_counter() - t

  def wait(self) -> None:
    """Blocks until every started save is committed."""
    step, self._in_flight = self._in_flight, None
    try:
      self._manager.wait_until_finished()
    except Exception as e:
      raise self._failed(step if step is not None else self.latest_step() or -1, e) from e

  def _verify(self, step: int, restored: Any) -> None:
    path = self.digest_dir / f"{step}.json"
    if not path.exists():
      return  # saved before digests were recorded
    want = json.loads(path.read_text())
    got = digests(restored)
    bad = sorted(k for k in want.keys() | got.keys() if want.get(k) != got.get(k))
    if bad:
      raise DigestMismatchError(
        f"{len(bad)} array(s) differ from what was saved ({', '.join(bad[:3])}"
        + (", ..." if len(bad) > 3 else "")
        + f"); the files of checkpoint {step} are corrupt"
      )

  def _unusable_folders(self) -> list[str]:
    """Step folders orbax lists but that hold no saved state (empty, partial, foreign)."""
    bad = []
    for step in self.steps():
      item = self.directory / str(step) / "default"
      if not item.is_dir() or not any(item.iterdir()):
        bad.append(str(step))
    return bad

  def _move_aside(self, names: list[str]) -> None:
    if not distributed.is_lead():
      return
    for name in names:
      src = self.directory / name
      dst = src.with_name(name + UNUSABLE_SUFFIX)
      n = 1
      while dst.exists():
        dst, n = src.with_name(f"{name}{UNUSABLE_SUFFIX}.{n}"), n + 1
      try:
        src.rename(dst)
      except OSError as e:
        logging.warning("Could not move %s aside: %s", src, e)
        continue
      logging.warning("Moved the unusable checkpoint %s aside to %s.", src, dst.name)
    self._reset_manager()

  def restore_latest(self, like: Any) -> tuple[int, Any] | None:
    """Restores the newest checkpoint that reads back intact, shaped like `like`.

    Step folders that hold no state (empty, partial, foreign), fail to read,
    or whose arrays differ from the digests recorded at save time are skipped
    with a warning naming them, and the one before is tried. Once one
    restores, the skipped newer folders are renamed `<step>.unusable` so the
    run can save those steps again. Returns (step, state), or None when there
    is no checkpoint.
    """
    steps = self.steps()
    if not steps:
      return None
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
    empty = set(self._unusable_folders())
    errors, skipped = [], []
    # Checkpoints that can be verified first, newest first; then those whose
    # digest file is missing (saved before digests existed, or deleted).
    verifiable = [s for s in steps if (self.digest_dir / f"{s}.json").exists()]
    unverifiable = [s for s in steps if s not in verifiable]
    if unverifiable:
      logging.warning(
        "Checkpoint(s) %s in %s have no digest file, so corruption in them cannot"
        " be detected; checkpoints that can be verified are tried first.",
        ", ".join(map(str, unverifiable)),
        self.directory,
      )
    for step in [*reversed(verifiable), *reversed(unverifiable)]:
      try:
        if str(step) in empty:
          raise CheckpointError("the folder holds no saved state (empty, partial or foreign)")
        restored = self._manager.restore(step, args=ocp.args.StandardRestore(abstract))
        self._verify(step, restored)
      except Exception as e:  # a damaged checkpoint fails in many ways
        logging.warning(
          "Checkpoint %d in %s is unusable (%s); trying the previous one.",
          step,
          self.directory,
          _short(e),
        )
        errors.append(f"step {step}: {_short(e)}")
        skipped.append(str(step))
        self._reset_manager()  # orbax may have cached a wrong item layout
        continue
      if step in unverifiable:
        logging.warning("Resuming from checkpoint %d, which could not be verified.", step)
      # Newer step folders stay in the way of saving those steps again.
      skipped += [str(s) for s in steps if s > step and str(s) not in skipped]
      if skipped:
        logging.warning(
          "Resumed from checkpoint %d instead of %d (skipped %s).",
          step,
          steps[-1],
          ", ".join(skipped),
        )
        self._move_aside(skipped)
      return step, restored
    raise CheckpointError(
      f"No checkpoint in {self.directory} could be restored:\n  "
      + "\n  ".join(errors)
      + f"\nIf the config changed, rerun with the config the run was started with;"
      f" otherwise move {self.directory} away to start the run afresh."
    )

  def close(self) -> None:
    """Waits for the last save, then releases orbax's threads.

    When the last save failed, that failure is what is raised: orbax's
    manager, closed after it, may fail again on the same broken save, and
    that second error goes to the debug log instead of replacing the first.
    After a failed save the orbax log stays installed: tensorstore's
    callbacks into orbax's closed event loop can arrive later, while the
    process exits, and belong in orbax.log, not on the console.
    """
    try:
      self.wait()
    except BaseException:
      try:
        self._manager.close()
      except Exception as e:
        logging.debug("Closing the checkpoint manager after a failed save: %r", e)
      raise
    try:
      self._manager.close()
    finally:
      self._orbax_log.uninstall()
