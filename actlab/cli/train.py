r"""Runs one experiment: a config file, a workdir.

  python experiments/main.py --config=experiments/configs/lenet5_cifar10.py \
      --workdir=/tmp/actlab/lenet5_relu [--config.model.activation=tanh ...]

This is the only file that defines flags; everything else takes a config.
"""

# ruff: noqa: E402  (the SIGTERM handler comes before the other imports)
# Before anything slow is imported: a SIGTERM from now on exits with 75.
from actlab import faults  # isort: skip  (only the standard library)

faults.exit_at_once_on_sigterm()

import errno
import json
import logging as pylogging
import re
import sys
from pathlib import Path

import jax
from absl import app, flags
from ml_collections import config_flags

from actlab import data, distributed, multiseed
from actlab.checkpoint import CheckpointError
from actlab.cli import importable_cwd
from actlab.config import ConfigError, base_config, closest_field
from actlab.workdir import WorkdirError, free_space
from actlab.writers import WriterError

# Expected failures, not bugs: the message says what to do; no traceback.
EXPECTED = (
  ConfigError,
  WorkdirError,
  CheckpointError,
  WriterError,
  faults.NonFiniteError,
  data.DataNotFoundError,
  data.ChecksumError,
  data.SplitError,
)
# I/O errors that are the machine's state, not a bug.
DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and plots.")
flags.DEFINE_bool(
  "allow_config_change",
  False,
  "Continue a workdir whose saved config differs from --config (default: refuse).",
)
config_flags.DEFINE_config_file(
  "config", None, "Experiment config file (a get_config() module).", lock_config=True
)
flags.DEFINE_string(
  "coordinator_address",
  None,
  "host:port of process 0, for a multi-process run outside SLURM/TPU/Kubernetes.",
)
flags.DEFINE_integer("num_processes", None, "Number of processes of a multi-process run.")
flags.DEFINE_integer("process_id", None, "This process's index in a multi-process run.")
flags.DEFINE_string(
  "cpu_devices",
  "auto",
  "JAX CPU devices of this process: 'auto' (one per core it may run on, at"
  " most 8, dividing the batch; XLA:CPU trains faster as such a data-parallel"
  " mesh) or a number. Ignored when XLA_FLAGS sets the count; accelerators are"
  " unaffected.",
)
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  _require_loaded_config()
  # Cluster jobs: let the TFDS and orbax chatter through only at warning level.
  pylogging.getLogger("absl").setLevel(pylogging.WARNING)
  if FLAGS.coordinator_address is None:  # a multi-process run keeps JAX's count
    cpus = FLAGS.cpu_devices
    if cpus != "auto" and not (cpus.isdigit() and int(cpus) > 0):
      sys.exit(f"error: --cpu_devices={cpus!r}: give 'auto' or a positive number.")
    distributed.use_cpu_cores(FLAGS.config.batch_size, cpus)
  distributed.initialize(FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id)
  if distributed.is_lead():
    print(f"JAX devices: {jax.device_count()} {jax.default_backend()}", flush=True)
  workdir = Path(FLAGS.workdir).expanduser()
  try:
    # The flag's text, not a Path: an empty --workdir must not become ".".
    multiseed.train_and_evaluate(  # seeds_per_program=1: train.train_and_evaluate
      FLAGS.config, FLAGS.workdir, allow_config_change=FLAGS.allow_config_change
    )
  except faults.Preempted as e:
    print(e, file=sys.stderr)
    # Saved, or nothing to save; a download's threads are not waited for.
    faults.exit_now(faults.PREEMPTED_EXIT_CODE)
  except EXPECTED as e:
    sys.exit(f"error: {e}")
  except OSError as e:
    if e.errno not in DISK_ERRNOS:
      raise
    sys.exit(f"error: {e.strerror} writing {e.filename or workdir}. {free_space(workdir)}")
  except KeyboardInterrupt:
    print("error: interrupted (Ctrl-C).", file=sys.stderr)
    faults.exit_now(130)
  faults.work_done()
  if distributed.is_lead():
    print(json.dumps(multiseed.final_summary(FLAGS.config, workdir), indent=2))
  if jax.process_count() == 1:
    # Python's teardown puts SIGTERM's default back (death by signal, 143);
    # done, this process leaves without it. (Other processes of a job keep
    # JAX's shutdown handshake.)
    faults.exit_now(0)


def parse_flags(argv: list[str]) -> list[str]:
  """absl's flag parsing, with a one-line error for an unknown --config.FIELD."""
  try:
    return FLAGS(argv)
  except flags.Error as e:
    unknown = re.search(r"flag '(?:--?)?config\.([\w.]+)'", str(e))
    if unknown:
      # absl may name another --config.FIELD of the same command line than
      # the one the config lacks: name the first that really is missing.
      sys.exit(_unknown_field(_missing_field(argv) or unknown.group(1)))
    group = re.search(r"flag --?config\.([\w.]+)=.*as a ConfigDict", str(e))
    if group:
      closest = _closest_field(group.group(1))
      sys.exit(
        f"error: config.{group.group(1)} is a group of fields, not a field"
        + (f"; did you mean --config.{closest}?" if closest else ".")
      )
    sys.exit(_config_file_error(e) or f"error: {e}\nPass --helpfull to see the flags.")
  except (AttributeError, KeyError) as e:  # ml_collections on a field the config lacks
    text = str(e)
    names = [
      a.split("=", 1)[0].removeprefix("--config.") for a in argv[1:] if a.startswith("--config.")
    ]
    # The field named in the error, as the user spelt it (`learning_rat` is
    # not `learning_rate`: whole words only).
    asked = next(
      (
        n
        for n in names
        if any(re.search(rf"(?<![\w.]){re.escape(part)}(?!\w)", text) for part in n.split("."))
      ),
      None,
    )
    sys.exit(_unknown_field(_missing_field(argv) or asked or text.splitlines()[0]))


def _missing_field(argv: list[str]) -> str | None:
  """The first --config.FIELD of `argv` that the --config file's config (or
  the base config) does not have."""
  config = FLAGS["config"].value or base_config()
  for arg in argv[1:]:
    if not arg.startswith("--config."):
      continue
    node = config
    for part in arg.split("=", 1)[0].removeprefix("--config.").split("."):
      if not hasattr(node, "keys") or part not in node:
        return arg.split("=", 1)[0].removeprefix("--config.")
      node = node[part]
  return None


def _config_file_error(e: Exception) -> str | None:
  """One line for a config file whose get_config() raised: ml_collections puts
  the whole traceback into the flag's error; its last line says what failed."""
  flag = re.match(r"flag (--?config=.*?): Error whilst parsing config file", str(e))
  if not flag:
    return None
  lines = [x.strip() for x in str(e).splitlines() if x.strip()]
  return (
    f"error: {flag.group(1)}: get_config() failed with"
    f" {lines[-1]}. Check the ':ARG' after the file name (the config file's"
    " docstring lists what it takes) or the file itself."
  )


def _require_loaded_config() -> None:
  """Exits with one line when the --config file could not be loaded (ml_collections
  defers that error to the config's first use, as a chained traceback)."""
  try:
    FLAGS.config.get("seed")
  except OSError as e:
    detail = [x.strip() for x in str(e).splitlines() if x.strip()][-1]
    sys.exit(
      f"error: --config={FLAGS['config'].config_filename} cannot be loaded ({detail})."
      " Give the path of a config file with a get_config() function, e.g."
      " --config=experiments/configs/lenet5_cifar10.py."
    )


def _closest_field(field: str) -> str | None:
  """The real field of the --config file (or the base config) `field` most likely means."""
  return closest_field(FLAGS["config"].value or base_config(), field)


def _unknown_field(field: str) -> str:
  """The error for `--config.FIELD` when the config has no FIELD: the closest real field.
  (ml_collections' own hint looks only inside the field's group.)"""
  closest = _closest_field(field)
  return (
    f"error: the config has no field {field!r}"
    + (f"; did you mean --config.{closest}?" if closest else f" (--config.{field}).")
    + " See the config file and actlab/config.py base_config() for the fields."
  )


def run() -> None:
  """The console script's entry point."""
  importable_cwd()
  app.run(main, flags_parser=parse_flags)


if __name__ == "__main__":
  run()
