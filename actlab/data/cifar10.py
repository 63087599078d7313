"""Loading CIFAR-10 splits into host memory."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from actlab.data.offline import DATASET, OFFICIAL_URL, import_cifar10

IMAGE_SHAPE = (32, 32, 3)
NUM_CLASSES = 10
SCALINGS = ("raw", "unit", "standardize")


class DataNotFoundError(FileNotFoundError):
  """CIFAR-10 is neither prepared nor obtainable; the message says what to do."""


class Split(NamedTuple):
  """One split in memory: uint8 images (N, 32, 32, 3) and int32 labels (N,)."""

  images: np.ndarray
  labels: np.ndarray


def default_data_dir() -> Path:
  """Where TFDS keeps datasets: $TFDS_DATA_DIR or ~/tensorflow_datasets."""
  return Path(os.environ.get("TFDS_DATA_DIR", "~/tensorflow_datasets")).expanduser()


def _how_to_get_data(data_dir: Path) -> str:
  return (
    f"To prepare it without internet, download {OFFICIAL_URL} on any"
    " machine, copy it here and run\n"
    f"  python -m actlab.data import /path/to/cifar-10-binary.tar.gz"
    f" --data_dir={data_dir}\n"
    "(the extracted cifar-10-batches-bin/ folder works too), or set"
    " config.archive to that path."
  )


def prepare(
  data_dir: str | os.PathLike | None = None,
  *,
  download: bool = True,
  archive: str | os.PathLike | None = None,
) -> None:
  """Makes TFDS `cifar10` (array_record) available in `data_dir`.

  From `archive` (a local official archive or folder) if given, else by
  downloading if `download`. Raises `DataNotFoundError` with instructions
  when neither works.
  """
  data_dir = Path(data_dir).expanduser() if data_dir else default_data_dir()
  if archive:
    import_cifar10(archive, data_dir)
    return
  if not download:
    raise DataNotFoundError(
      f"CIFAR-10 is not prepared in {data_dir} and downloading is off"
      f" (config.download=False). {_how_to_get_data(data_dir)}"
    )
  # TFDS needs TensorFlow to generate the dataset; keep it off the GPUs.
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  tf.config.set_visible_devices([], "GPU")
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  builder = tfds.builder(DATASET, data_dir=data_dir, file_format="array_record")
  try:
    builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(try_download_gcs=False)
    )
  except Exception as e:  # network errors come in many types
    raise DataNotFoundError(
      f"CIFAR-10 is not prepared in {data_dir} and downloading it failed"
      f" ({type(e).__name__}: {e}). {_how_to_get_data(data_dir)}"
    ) from e


def _data_source(split: str, data_dir: Path | None):
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  return tfds.data_source(DATASET, split=split, data_dir=data_dir, download=False)


def load(
  split: str,
  data_dir: str | os.PathLike | None = None,
  *,
  download: bool = True,
  archive: str | os.PathLike | None = None,
) -> Split:
  """Reads a CIFAR-10 split (`'train'`, `'test'`, `'train[:10%]'`, ...).

  Prepares the dataset first if it is missing (see `prepare`).
  """
  root = Path(data_dir).expanduser() if data_dir else default_data_dir()
  try:
    source = _data_source(split, root)
  except (AssertionError, FileNotFoundError, NotImplementedError) as e:
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

    builder = tfds.builder(DATASET, data_dir=root)
    if builder.is_prepared():
      raise DataNotFoundError(
        f"CIFAR-10 in {builder.data_dir} is stored as"
        f" {builder.info.file_format.value}, but actlab reads array_record"
        " (random access without TensorFlow). Point config.data_dir at another"
        " folder, or delete that one, and actlab will prepare it again."
      ) from e
    logging.info("CIFAR-10 not found in %s; preparing it.", root)
    prepare(root, download=download, archive=archive)
    source = _data_source(split, root)
  n = len(source)
  records = [source[i] for i in range(n)]
  images = np.stack([np.asarray(r["image"], np.uint8) for r in records])
  labels = np.asarray([r["label"] for r in records], np.int32)
  if images.shape[1:] != IMAGE_SHAPE:
    raise ValueError(f"expected CIFAR-10 images of shape {IMAGE_SHAPE}, got {images.shape[1:]}")
  return Split(images, labels)


def channel_stats(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Per-channel mean and std of uint8 images, on the 0-1 scale."""
  x = images.reshape(-1, images.shape[-1]).astype(np.float64) / 255.0
  return x.mean(0).astype(np.float32), x.std(0).astype(np.float32)


def scale_images(
  images_u8: jnp.ndarray,
  scaling: str,
  mean: jnp.ndarray | None = None,
  std: jnp.ndarray | None = None,
) -> jnp.ndarray:
  """uint8 images -> float32 inputs: `raw` 0-255, `unit` 0-1, `standardize`."""
  x = images_u8.astype(jnp.float32)
  if scaling == "raw":
    return x
  if scaling == "unit":
    return x / 255.0
  if scaling == "standardize":
    return (x / 255.0 - mean) / std
  raise ValueError(f"Unknown input scaling {scaling!r}; choose one of {SCALINGS}.")
