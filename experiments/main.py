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

from actlab import data, train
from actlab.config import ConfigError

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and plots.")
config_flags.DEFINE_config_file(
    "config", None, "Experiment config file (a get_config() module).", lock_config=True
)
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  # Cluster jobs: let the TFDS and orbax chatter through only at warning level.
  pylogging.getLogger("absl").setLevel(pylogging.WARNING)
  logging.info("JAX devices: %s", jax.devices())
  try:
    train.train_and_evaluate(FLAGS.config, FLAGS.workdir)
  except (ConfigError, data.DataNotFoundError, data.ChecksumError) as e:
    # Bad input, not a bug: the message says what to do; no traceback.
    sys.exit(f"error: {e}")
  print(json.dumps(train.final_summary(FLAGS.workdir), indent=2))


if __name__ == "__main__":
  app.run(main)
