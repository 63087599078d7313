r"""LeNet5 on CIFAR-10 with several activations, learning curves side by side.

  python scripts/sweep.py --config=experiments/configs/activation_comparison.py \
      --workdir=/tmp/actlab/comparison --config.data_dir=/tmp/tfds
  python scripts/report.py /tmp/actlab/comparison/* --out=/tmp/actlab/comparison/report.md

Each run is the tutorial's (lenet5_cifar10.py) with another activation; pass
`:acts=relu+tanh` to choose the list, `epochs=N` to shorten it. Measured:
docs/findings.md.
"""

import ml_collections

from actlab import config as config_lib

DEFAULT_ACTIVATIONS = ("relu", "sigmoid", "tanh", "elu", "leaky_relu(negative_slope=0.1)", "gelu")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = config_lib.base_config()
  c.diagnostics = True
  c.diagnostics_every_steps = 195
  args = config_lib.apply_args(c, arg)
  acts = args.pop("acts", None)
  c.activations = acts.split("+") if acts else list(DEFAULT_ACTIVATIONS)
  config_lib.reject_unknown(args, "acts=a+b+..., act=, epochs=, seed=, runlocal")
  return c


def sweep(config: ml_collections.ConfigDict | None = None) -> list[dict]:
  acts = (config or get_config()).activations
  return [{"name": a.split("(")[0], "activation": a} for a in acts]
