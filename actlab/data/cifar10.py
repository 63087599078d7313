"""Loading CIFAR-10 splits into host memory."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import urllib.parse
import urllib.request
from collections.abc import Iterator
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


class SplitError(ValueError):
  """A split name TFDS cannot read, or one that selects no examples."""


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
    " config.data.archive to that path."
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
      f" (config.data.download=False). {_how_to_get_data(data_dir)}"
    )
  unreachable = _unreachable(OFFICIAL_URL)
  if unreachable:
    raise DataNotFoundError(
      f"CIFAR-10 is not prepared in {data_dir} and this machine cannot reach"
      f" the download server ({unreachable}). {_how_to_get_data(data_dir)}"
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


# How long the reachability probe waits for a connection (the server's, or
# the proxy's when one is configured) before calling the network unreachable.
PROBE_TIMEOUT_S = 10.0


def _unreachable(url: str, timeout: float = PROBE_TIMEOUT_S) -> str | None:
  """Why `url`'s server (or the configured proxy) is unreachable, else None.

  TFDS retries a failed download for minutes; an offline machine should
  hear within `timeout` seconds: no name resolution, a refused connection,
  no route, or no answer to the connection within `timeout`. With a proxy
  configured for the URL's scheme (and the host not in no_proxy), the proxy
  is probed instead of the server.
  """
  parts = urllib.parse.urlsplit(url)
  host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
  proxy = urllib.request.getproxies().get(parts.scheme)
  via = ""
  if proxy and not urllib.request.proxy_bypass(host):
    proxied = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    host, port = proxied.hostname or "", proxied.port or 80
    via = f"the proxy {proxy} ({parts.scheme}_proxy): "
  try:
    addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
  except socket.gaierror as e:
    return f"{via}cannot resolve {host}: {e.strerror or e}"
  failed = None
  for family, kind, proto, _, address in addresses:
    try:
      with socket.socket(family, kind, proto) as s:
        s.settimeout(timeout)
        s.connect(address)
      return None
    except TimeoutError:
      failed = f"{via}no answer from {host}:{port} within {timeout:g} s"
    except OSError as e:  # refused, no route, network unreachable
      failed = f"{via}cannot connect to {host}:{port}: {e.strerror or e}"
  return failed


def _data_source(split: str, data_dir: Path):
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  with _readable_info(data_dir):
    return tfds.data_source(DATASET, split=split, data_dir=data_dir, download=False)


@contextlib.contextmanager
def _readable_info(data_dir: Path) -> Iterator[None]:
  """Turns a damaged dataset_info.json (truncated, edited), which TFDS
  reports as a protobuf parse error wherever it reads it, into the advice to re-import."""
  from google.protobuf import json_format  # pylint: disable=g-import-not-at-top

  try:
    yield
  except json_format.Error as e:
    raise DataNotFoundError(_unreadable(data_dir, e)) from None


def _unreadable(root: Path, e: Exception) -> str:
  return (
    f"CIFAR-10 in {root} cannot be read ({_first_line(e)}): a data file is"
    f" missing or corrupt. Delete {root / DATASET} and re-import with"
    f" python -m actlab.data import /path/to/cifar-10-binary.tar.gz --data_dir={root}"
    " (or set config.data.download=True with internet)."
  )


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
  except (ValueError, KeyError) as e:
    raise SplitError(_bad_split(split, e)) from None
  except (AssertionError, FileNotFoundError, NotImplementedError) as e:
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

    with _readable_info(root):
      builder = tfds.builder(DATASET, data_dir=root)
    if builder.is_prepared():
      raise DataNotFoundError(
        f"CIFAR-10 in {builder.data_dir} is stored as"
        f" {builder.info.file_format.value}, but actlab reads array_record"
        " (random access without TensorFlow). Point config.data.data_dir at another"
        " folder, or delete that one, and actlab will prepare it again."
      ) from e
    logging.info("CIFAR-10 not found in %s; preparing it.", root)
    prepare(root, download=download, archive=archive)
    try:
      source = _data_source(split, root)
    except (ValueError, KeyError) as e:
      raise SplitError(_bad_split(split, e)) from None
  try:
    n = len(source)
    records = [source[i] for i in range(n)]
  except (RuntimeError, OSError, ValueError) as e:  # array_record reports damage as RuntimeError
    raise DataNotFoundError(_unreadable(root, e)) from None
  if n == 0:
    raise SplitError(f"The split {split!r} selects no examples; choose a non-empty slice.")
  images = np.stack([np.asarray(r["image"], np.uint8) for r in records])
  labels = np.asarray([r["label"] for r in records], np.int32)
  if images.shape[1:] != IMAGE_SHAPE:
    raise ValueError(f"expected CIFAR-10 images of shape {IMAGE_SHAPE}, got {images.shape[1:]}")
  return Split(images, labels)


def _first_line(e: Exception) -> str:
  lines = str(e).strip().splitlines()
  return f"{type(e).__name__}: {lines[0] if lines else ''}"[:300]


def _bad_split(split: str, e: Exception) -> str:
  return (
    f"Cannot read the split {split!r} ({_first_line(e)}). CIFAR-10 has the splits"
    " 'train' (50,000) and 'test' (10,000); slices look like 'train[:10%]',"
    " 'train[45000:]' or 'test[:1000]', with percentages in [-100, 100]."
  )


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
