r"""Runs one experiment: a config file, a workdir.

  python experiments/main.py --config=experiments/configs/lenet5_cifar10.py \
      --workdir=/tmp/actlab/lenet5_relu [--config.activation=tanh ...]

This is the only file that defines flags; everything else takes a config.
"""

import json
import logging as pylogging
import sys

import jax
from absl import app, flags, logging
from ml_collections import config_flags

from actlab import data, distributed, train
from actlab.checkpoint import CheckpointError
from actlab.config import ConfigError
from actlab.workdir import WorkdirError

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
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  # Cluster jobs: let the TFDS and orbax chatter through only at warning level.
  pylogging.getLogger("absl").setLevel(pylogging.WARNING)
  distributed.initialize(FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id)
  logging.info("JAX devices: %s", jax.devices())
  try:
    train.train_and_evaluate(
      FLAGS.config, FLAGS.workdir, allow_config_change=FLAGS.allow_config_change
    )
  except train.Preempted as e:
    print(e, file=sys.stderr)
    sys.exit(train.PREEMPTED_EXIT_CODE)
  except (
    ConfigError,
    WorkdirError,
    CheckpointError,
    train.NonFiniteError,
    data.DataNotFoundError,
    data.ChecksumError,
  ) as e:
    # Expected failures, not bugs: the message says what to do; no traceback.
    sys.exit(f"error: {e}")
  if distributed.is_lead():
    print(json.dumps(train.final_summary(FLAGS.workdir), indent=2))


if __name__ == "__main__":
  app.run(main)
