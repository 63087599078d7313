"""What a run does when it is interrupted or diverges.

SIGTERM/SIGINT become a request to save and stop at the next step boundary
(`StopRequests`, `Preempted`); a non-finite loss, gradient or update is handled by
`config.nonfinite_policy` (`NonFiniteGuard`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

# Only the standard library at import time: command-line entry points import
# this module first, to handle SIGTERM before JAX loads (`exit_at_once_on_sigterm`).
if TYPE_CHECKING:
  import ml_collections

  from actlab import checkpoint
  from actlab.steps import TrainState

# Codes for TrainState.nonfinite_kind, which `actlab.steps` sets at the first
# non-finite step, and what each names.
NONFINITE_NONE, NONFINITE_LOSS, NONFINITE_GRADIENT, NONFINITE_UPDATE = 0, 1, 2, 3
NONFINITE_NAMES = {
  NONFINITE_LOSS: "loss",
  NONFINITE_GRADIENT: "gradient norm",
  NONFINITE_UPDATE: "update (new parameters or optimizer state)",
}

# Exit status of a run stopped by SIGTERM/SIGINT after saving (EX_TEMPFAIL):
# cluster wrappers requeue on it, and the rerun resumes from that step.
PREEMPTED_EXIT_CODE = 75


class Preempted(Exception):
  """The run was asked to stop by a signal and saved its state first."""

  def __init__(self, step: int | None, signum: int, directory: Path | None = None):
    self.step = step
    name = signal.Signals(signum).name
    if step is None:
      msg = f"Stopped by {name} before training started; nothing needed saving."
    else:
      msg = f"Stopped by {name} after step {step}; the state is saved in {directory}."
    super().__init__(msg + " Rerun the same command to continue.")


class NonFiniteError(FloatingPointError):
  """Training produced a non-finite loss, gradient or update and the policy says stop."""


_work_done = False


def _exit_at_once(signum: int, frame: Any) -> None:
  del frame
  name = signal.Signals(signum).name
  if _work_done:
    msg, code = f"{name} received after the work was done.", 0
  else:
    msg = (
      f"Stopped by {name} before training started; nothing needed saving."
      " Rerun the same command to continue."
    )
    code = PREEMPTED_EXIT_CODE
  # os.write and os._exit: no buffered stream the signal may have interrupted
  # is touched, and no thread (a download's, XLA's) is waited for.
  os.write(2, (msg + "\n").encode())
  os._exit(code)


def exit_at_once_on_sigterm() -> None:
  """For a command's first lines: SIGTERM exits at once with status 75 (0
  after `work_done()`) while no run holds `StopRequests`.

  Outside a run (Python's imports, flag parsing, the final summary) nothing
  is in flight that needs saving; without this a SIGTERM there ends the
  process with 143, which cluster wrappers do not requeue. Unblocks SIGTERM,
  which a parent may block across exec so that not even the start-up misses it.
  """
  if threading.current_thread() is not threading.main_thread():
    return
  signal.signal(signal.SIGTERM, _exit_at_once)
  signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})


def exit_now(code: int) -> None:
  """Exits with `code` once every finally block has run, without waiting
  for other threads (a download's retries) or for the interpreter's teardown."""
  for stream in (sys.stdout, sys.stderr):
    stream.flush()
  os._exit(code)


def work_done() -> None:
  """From now on a SIGTERM outside a run exits with 0: the command's work is done."""
  global _work_done
  _work_done = True


class StopRequests:
  """Turns SIGTERM/SIGINT into a flag the loop checks between steps.

  Until `arm()` (while data loads and the state is built) there is nothing to
  save: SIGINT interrupts at once (KeyboardInterrupt) and SIGTERM is only
  recorded; `check()`, called between the stages of preparing the run, and
  `arm()` raise `Preempted` with no step for it. The handler never raises
  into whatever the main thread is running then: an exception thrown
  through XLA's compiler or orbax's threads leaves them broken and the
  process segfaults when it exits. Inside `interruptible()` (a download,
  plain Python waiting on the network) SIGTERM raises at once. After `arm()`
  a second signal while the first is being handled interrupts at once,
  except a repeated SIGTERM (the same request along another path).
  Installed only in the main thread (Python allows handlers nowhere else).
  """

  def __init__(self):
    self.signum: int | None = None
    self.armed = False
    self._interruptible = False
    self._previous: dict[int, Any] = {}

  def check(self) -> None:
    """Raises `Preempted` (nothing saved) if SIGTERM arrived before `arm()`."""
    if self.signum is not None and not self.armed:
      raise Preempted(None, self.signum)

  @contextlib.contextmanager
  def interruptible(self) -> Iterator[None]:
    """Inside, a SIGTERM before `arm()` raises `Preempted` at once."""
    self.check()
    self._interruptible = True
    try:
      yield
    finally:
      self._interruptible = False
    self.check()

  def arm(self) -> None:
    """From now on a signal asks the loop to save and stop at the next step."""
    self.check()
    self.armed = True

  def _handle(self, signum, frame):
    del frame
    if not self.armed:
      if signum != signal.SIGTERM:
        raise KeyboardInterrupt
      self.signum = signum
      if self._interruptible:
        raise Preempted(None, signum)
      logging.warning("%s received: stopping before training starts.", signal.Signals(signum).name)
      return
    if self.signum is not None:
      # A scheduler's SIGTERM reaches a job's processes along several paths
      # (SLURM signals every process of the job, the batch script forwards it
      # too): a repeated SIGTERM is the same request. Any other second signal
      # (Ctrl-C again) interrupts at once.
      if signum == self.signum == signal.SIGTERM:
        return
      raise KeyboardInterrupt
    self.signum = signum
    logging.warning("%s received: saving after this step.", signal.Signals(signum).name)

  def __enter__(self) -> StopRequests:
    if threading.current_thread() is threading.main_thread():
      for s in (signal.SIGTERM, signal.SIGINT):
        self._previous[s] = signal.signal(s, self._handle)
    return self

  def __exit__(self, *exc) -> None:
    for s, h in self._previous.items():
      signal.signal(s, h)


class NonFiniteGuard:
  """Applies config.nonfinite_policy to the skip counts the steps report."""

  def __init__(self, config: ml_collections.ConfigDict, ckpt: checkpoint.Checkpoints):
    self.policy = config.nonfinite_policy
    self.max_skips = config.max_consecutive_skips
    self.ckpt = ckpt

  def _last_good(self) -> str:
    """Where the run stands, and exactly how to rerun it with a lower learning rate."""
    self.ckpt.wait()
    last = self.ckpt.latest_step()
    if last is None:
      return (
        f"No checkpoint was saved yet in {self.ckpt.directory}: rerun the same"
        " command with a lower --config.optim.learning_rate; it starts afresh."
      )
    return (
      f"The last good checkpoint (step {last}) in {self.ckpt.directory} is untouched:"
      " rerun the same command with a lower --config.optim.learning_rate and"
      " --allow_config_change to continue from it, or with another --workdir to start afresh."
    )

  def check(self, interval: dict[str, float], state: TrainState) -> None:
    from actlab import distributed  # pylint: disable=g-import-not-at-top  (see the imports)

    if not interval.get("skipped"):
      return
    if self.policy == "stop":
      bad = int(distributed.local_value(state.first_nonfinite_step))
      kind = int(distributed.local_value(state.nonfinite_kind))
      raise NonFiniteError(
        f"Non-finite {NONFINITE_NAMES[kind]} at step {bad}; the run"
        f" stopped (config.nonfinite_policy='stop') without applying that"
        f" update. {self._last_good()} Or set config.nonfinite_policy='skip' to skip"
        " such steps."
      )
    if interval["max_consecutive_skips"] >= self.max_skips:
      raise NonFiniteError(
        f"{interval['max_consecutive_skips']} consecutive steps had a non-finite"
        f" loss, gradient or update (limit config.max_consecutive_skips={self.max_skips});"
        f" {int(distributed.local_value(state.skipped_steps))} skipped in all. {self._last_good()}"
      )
