"""CIFAR-10 from TFDS, held in memory as uint8 arrays.

`load` reads a prepared TFDS `cifar10` (array_record) through
`tfds.data_source`, which needs neither TensorFlow nor a network. If the
dataset is missing it is downloaded and prepared (needs internet and
TensorFlow, imported only then), or, offline, imported from a local copy of
the official archive: `python -m actlab.data import PATH`.
"""

from actlab.data.cifar10 import (
  DataNotFoundError,
  Split,
  SplitError,
  default_data_dir,
  load,
  prepare,
  scale_images,
)
from actlab.data.offline import ChecksumError, import_cifar10

__all__ = [
  "ChecksumError",
  "DataNotFoundError",
  "Split",
  "SplitError",
  "default_data_dir",
  "import_cifar10",
  "load",
  "prepare",
  "scale_images",
]
