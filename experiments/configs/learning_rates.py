r"""Each activation at its own Adam learning rate, chosen on validation.

  python scripts/sweep.py --config=experiments/configs/learning_rates.py \
      --seeds=5 --workers=auto --workdir=/tmp/actlab/learning_rates \
      --config.data.data_dir=/data/tfds --config.data.download=False
  python scripts/report.py /tmp/actlab/learning_rates

The proxy budget of proxy_comparison.py (LeNet5, train[:10000], 8 epochs,
validation-selected epoch, test once) for 8 activations x 3 Adam learning
rates. Conditions are named `<activation>_lr<rate>`. For each activation the
rate with the highest mean validation accuracy over seeds is chosen (the
test split plays no part in choosing); the declared family compares each
activation at its chosen rate with relu at relu's chosen rate (7
comparisons), next to the same comparison at the shared rate 1e-3.
"""

import ml_collections

from actlab import presets

DEFAULT_ACTIVATIONS = ("relu", "leaky_relu", "elu", "gelu", "silu", "mish", "tanh", "sigmoid")
LEARNING_RATES = (3e-4, 1e-3, 3e-3)
SHARED_RATE = 1e-3


def condition_name(activation: str, rate: float) -> str:
  return f"{activation}_lr{rate:g}"


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  return presets.proxy_study(arg, DEFAULT_ACTIVATIONS)


def sweep(config: ml_collections.ConfigDict | None = None) -> dict:
  acts = [a.split("(")[0] for a in (config or get_config()).activations]
  return {
    "conditions": [
      {"name": condition_name(a, lr), "model.activation": a, "optim.learning_rate": lr}
      for a in acts
      for lr in LEARNING_RATES
    ],
    "baseline": condition_name("relu", SHARED_RATE),
    # Chosen per activation on validation: `activation` groups the conditions,
    # `choose` is the field whose best value is picked.
    "select": {
      "group": "model.activation",
      "choose": "optim.learning_rate",
      "shared": SHARED_RATE,
      "baseline": "relu",
    },
  }
