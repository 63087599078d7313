r"""Linear collapse: with the identity activation a deep network is one linear map.

Trains an MLP (3 hidden layers of 256) with `identity`, then multiplies its
trained kernels and biases into a single (W, b) and checks that x W + b gives
the network's outputs (scripts/linear_collapse.py). The same network with
relu shows what the nonlinearity buys.

  python scripts/sweep.py --config=experiments/configs/linear_collapse.py \
      --workdir=/tmp/actlab/collapse --config.data.data_dir=/tmp/tfds
  python scripts/linear_collapse.py /tmp/actlab/collapse/identity/seed_0
  python scripts/report.py /tmp/actlab/collapse

Expected: the collapsed map reproduces the identity network to float32
precision, and that network is no better than a linear classifier (about 0.40
on CIFAR-10), well below relu. Measured: docs/findings.md.
"""

import ml_collections

from actlab import presets
from actlab.config import base_config


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = base_config()
  c.model.name = "mlp"
  c.model.mlp_depth = 3
  c.model.mlp_width = 256
  c.model.activation = "identity"
  c.data.input_scaling = "standardize"
  c.num_epochs = 5
  presets.reject_unknown(presets.apply_args(c, arg))
  return c


def sweep() -> list[dict]:
  return [{"name": act, "model.activation": act} for act in ("identity", "relu")]
