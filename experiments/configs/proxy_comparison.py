r"""The ten activations on a cheap budget at 20 seeds: a comparison with power.

  python scripts/sweep.py --config=experiments/configs/proxy_comparison.py \
      --workers=auto --workdir=/tmp/actlab/proxy \
      --config.data.data_dir=/data/tfds --config.data.download=False
  python scripts/report.py /tmp/actlab/proxy

LeNet5 as in activation_comparison.py (raw pixels, Glorot uniform, Adam 1e-3,
batch 256) trained on train[:10000] for 8 epochs, the epoch selected on
train[45000:], the test split evaluated once at it. Seeds 0-19 by default
(`--seeds` overrides). The declared family: each activation against relu
(9 comparisons). How well this budget's ranking agrees with the tutorial's
10-epoch budget (activation_comparison.py) is measured in docs/findings.md.
"""

import ml_collections

from actlab import presets

DEFAULT_ACTIVATIONS = presets.COMPARED_ACTIVATIONS
SEEDS = tuple(range(20))


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  return presets.proxy_study(arg, DEFAULT_ACTIVATIONS)


def sweep(config: ml_collections.ConfigDict | None = None) -> dict:
  acts = [a.split("(")[0] for a in (config or get_config()).activations]
  return {
    "conditions": [{"name": a, "model.activation": a} for a in acts],
    "baseline": "relu",
    "seeds": list(SEEDS),
    "family": [[a, "relu"] for a in acts if a != "relu"],
  }
