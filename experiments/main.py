r"""Runs one experiment: a config file, a workdir (the `actlab-train` command).

  python experiments/main.py --config=experiments/configs/lenet5_cifar10.py \
      --workdir=/tmp/actlab/lenet5_relu [--config.model.activation=tanh ...]

The flags and the code live in `actlab.cli.train`, part of the installed package.
"""

from actlab.cli import train

if __name__ == "__main__":
  train.run()
