"""actlab: activation functions, their gradients, and what they do to training.

Submodules (loaded on first use; none imports TensorFlow, only preparing
CIFAR-10 does): `activations`, `models`, `data`, `train`, `steps`,
`diagnostics`, `checkpoint`, `faults`, `workdir`, `distributed`, `config`,
`writers`, `sweep`, `stats`.
"""

import importlib

__version__ = "0.1.0"
_SUBMODULES = (
  "activations", "models", "data", "train", "steps", "diagnostics", "checkpoint",
  "faults", "workdir", "distributed", "config", "writers", "sweep", "stats",
)


def __getattr__(name: str):
  if name in _SUBMODULES:
    return importlib.import_module(f"actlab.{name}")
  raise AttributeError(f"module 'actlab' has no attribute {name!r}")


__all__ = list(_SUBMODULES)
