r"""The tutorial's run: LeNet5 on CIFAR-10, Adam 1e-3, batch 256, 10 epochs.

  python experiments/main.py --config=experiments/configs/lenet5_cifar10.py \
      --workdir=/tmp/actlab/lenet5_relu

gives a final validation accuracy of about 0.54 (the tutorial's Keras run:
0.5417; measured here: see docs/results.md). Variants:

  --config=experiments/configs/lenet5_cifar10.py:act=tanh
  --config=experiments/configs/lenet5_cifar10.py:act=elu(alpha=0.5),epochs=3
  --config=experiments/configs/lenet5_cifar10.py:runlocal   # 1 epoch, 10% data

and any field from the command line: --config.optim.learning_rate=3e-4.
Offline, point config.data.archive at cifar-10-binary.tar.gz on the first run:
  --config.data.archive=/path/to/cifar-10-binary.tar.gz
"""

import ml_collections

from actlab import presets


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The tutorial's defaults; `arg` is `act=NAME,epochs=N,seed=S,runlocal`
  (`actlab.presets.tutorial`, importable outside this repository)."""
  return presets.tutorial(arg)
