r"""LeNet5 on CIFAR-10, ten activations, several seeds: the headline comparison.

  python scripts/sweep.py --config=experiments/configs/activation_comparison.py \
      --seeds=5 --workers=auto --workdir=/tmp/actlab/comparison \
      --config.data.data_dir=/data/tfds --config.data.download=False
  python scripts/report.py /tmp/actlab/comparison

Each run is the tutorial's (raw pixels, Glorot uniform, Adam 1e-3, batch 256)
with another activation, on the validation protocol: trained on
train[:45000], the epoch selected on train[45000:], the test split evaluated
once at that epoch. Conditions at the same seed share the initialisation
stream and the data order (paired). `:acts=relu+tanh` chooses the list,
`epochs=N` the length. Measured: docs/findings.md.
"""

import ml_collections

from actlab import presets
from actlab.config import base_config

DEFAULT_ACTIVATIONS = presets.COMPARED_ACTIVATIONS


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = presets.validation_protocol(base_config())
  presets.apply_study_args(c, arg, DEFAULT_ACTIVATIONS)
  return c


def sweep(config: ml_collections.ConfigDict | None = None) -> dict:
  acts = (config or get_config()).activations
  return {
    "conditions": [{"name": a.split("(")[0], "model.activation": a} for a in acts],
    "baseline": "relu",
  }
