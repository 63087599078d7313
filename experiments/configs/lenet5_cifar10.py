r"""The tutorial's run: LeNet5 on CIFAR-10, Adam 1e-3, batch 256, 10 epochs.

  python experiments/main.py --config=experiments/configs/lenet5_cifar10.py \
      --workdir=/tmp/actlab/lenet5_relu

gives a final validation accuracy of about 0.54 (the tutorial's Keras run:
0.5417; actlab measured 0.56, see docs/results.md). Variants:

  --config=experiments/configs/lenet5_cifar10.py:act=tanh
  --config=experiments/configs/lenet5_cifar10.py:act=elu(alpha=0.5),epochs=3
  --config=experiments/configs/lenet5_cifar10.py:runlocal   # 1 epoch, 10% data

and any field from the command line: --config.learning_rate=3e-4.
Offline, point config.archive at cifar-10-binary.tar.gz on the first run:
  --config.archive=/path/to/cifar-10-binary.tar.gz
"""

import ml_collections

from actlab.config import parse_arg


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The tutorial's defaults; `arg` is `act=NAME,epochs=N,runlocal`."""
  args = parse_arg(arg)
  c = ml_collections.ConfigDict()

  c.activation = args.pop("act", "relu")
  c.seed = args.pop("seed", 0)

  # Data: TFDS cifar10 from data_dir ($TFDS_DATA_DIR or ~/tensorflow_datasets).
  c.data_dir = ""
  c.download = True  # download and prepare if missing (needs internet)
  c.archive = ""  # or prepare from a local cifar-10-binary.tar.gz / folder
  c.train_split = "train"
  c.eval_split = "test"  # the tutorial validates on the test split
  c.input_scaling = "raw"  # raw 0-255 as in the tutorial; or unit, standardize

  c.optimizer = "adam"
  c.learning_rate = 1e-3
  # Keras's Adam defaults (epsilon 1e-7, not optax's 1e-8).
  c.adam_b1 = 0.9
  c.adam_b2 = 0.999
  c.adam_eps = 1e-7
  c.weight_decay = 1e-4  # adamw only
  c.momentum = 0.9  # momentum only
  c.batch_size = 256
  c.num_epochs = args.pop("epochs", 10)
  c.dtype = "float32"

  c.log_every_steps = 20
  c.keep_checkpoints = 3
  c.checkpoint_every_steps = 0  # 0: only at the end of every epoch
  c.nonfinite_policy = "stop"  # or "skip": skip steps with non-finite loss/grad
  c.max_consecutive_skips = 10  # "skip" stops after this many in a row

  if args.pop("runlocal", False):
    c.train_split = "train[:10%]"
    c.eval_split = "test[:10%]"
    c.num_epochs = 1
  if args:
    raise ValueError(
        f"Unknown config argument(s) {sorted(args)}; this config takes act=,"
        " epochs=, seed=, runlocal."
    )
  return c
