"""Prepares the TFDS `cifar10` dataset from a local copy of the official release.

Cluster nodes rarely have internet. Given `cifar-10-binary.tar.gz` or its
extracted `cifar-10-batches-bin/` folder, every member file is checked against
the official SHA-256 digest before anything is written, and the standard TFDS
CIFAR-10 builder then generates the dataset from the verified files. TFDS
writes into a temporary folder and renames it on success, so a failure leaves
nothing half-written.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO

DATASET = "cifar10"
PREFIX = "cifar-10-batches-bin"

# SHA-256 of the member files of the official CIFAR-10 binary release.
MEMBER_SHA256 = {
  "batches.meta.txt": "558e74b5e208382e186da55784b4bac2cd52e558448e1b5800990fdb28ed8033",
  "data_batch_1.bin": "cee916563c9f80d84e3cc88e17fdc0941787f1244f00a67874d45b261883ada5",
  "data_batch_2.bin": "a591ca11fa1708a91ee40f54b3da4784ccd871ecf2137de63f51ada8b3fa57ed",
  "data_batch_3.bin": "bbe8596564c0f86427f876058170b84dac6670ddf06d79402899d93ceea26f67",
  "data_batch_4.bin": "014e562d6e23c72197cc727519169a60359f5eccd8945ad5a09d710285ff4e48",
  "data_batch_5.bin": "755304fc0b379caeae8c14f0dac912fbc7d6cd469eb67a1029a08a39453a9add",
  "test_batch.bin": "8e2eb146ae340b09e24670f29cabc6326dba54da8789dab6768acf480273f65b",
}
# The members the TFDS builder reads; readme.html is not needed.
REQUIRED = tuple(MEMBER_SHA256)

OFFICIAL_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"


class ChecksumError(ValueError):
  """A member file does not match its official digest."""


def _copy_hashing(src: IO[bytes], dst_path: Path) -> str:
  digest = hashlib.sha256()
  with open(dst_path, "wb") as dst:
    for block in iter(lambda: src.read(1 << 20), b""):
      digest.update(block)
      dst.write(block)
  return digest.hexdigest()


def _check(name: str, got: str, source: Path, expected: dict[str, str]) -> None:
  if got != expected[name]:
    raise ChecksumError(
      f"{name} in {source} does not match the official CIFAR-10 release"
      f" (SHA-256 {got}, expected {expected[name]}). The file is corrupt or"
      f" not from {OFFICIAL_URL}; download the archive again. Nothing was"
      " written."
    )


def stage_members(source: Path, dest: Path, expected: dict[str, str] = MEMBER_SHA256) -> Path:
  """Copies the verified member files of `source` into `dest/PREFIX/`.

  Args:
    source: `cifar-10-binary.tar.gz` (any tar compression) or a folder that is
      `cifar-10-batches-bin/` or contains it.
    dest: an empty scratch folder.
    expected: member name -> SHA-256.

  Returns:
    `dest`, laid out as the extracted official archive.

  Raises:
    FileNotFoundError: `source` or a member is missing.
    ChecksumError: a member's digest differs; its name is in the message.
  """
  out = dest / PREFIX
  out.mkdir(parents=True)
  if source.is_dir():
    folder = source / PREFIX if (source / PREFIX).is_dir() else source
    for name in expected:
      path = folder / name
      if not path.is_file():
        raise FileNotFoundError(
          f"{name} is missing from {folder}; expected the extracted"
          f" {PREFIX}/ folder of the official release ({', '.join(expected)})."
        )
      with open(path, "rb") as f:
        _check(name, _copy_hashing(f, out / name), folder, expected)
    return dest
  if not source.is_file():
    raise FileNotFoundError(
      f"{source} does not exist. Pass the path of cifar-10-binary.tar.gz or of"
      f" its extracted {PREFIX}/ folder."
    )
  try:
    archive = tarfile.open(source, "r:*")
  except tarfile.TarError as e:
    raise ChecksumError(
      f"{source} is not a readable tar archive ({e}); download {OFFICIAL_URL} again."
    ) from None
  seen = set()
  try:
    with archive:
      for member in archive:
        name = os.path.basename(member.name)
        if name not in expected or not member.isfile():
          continue
        f = archive.extractfile(member)
        assert f is not None
        _check(name, _copy_hashing(f, out / name), source, expected)
        seen.add(name)
  except (EOFError, tarfile.TarError, zlib.error, OSError) as e:
    if isinstance(e, OSError) and e.errno is not None:
      raise  # a real I/O error (a full scratch disk), not a bad archive
    raise ChecksumError(
      f"{source} is truncated or corrupt ({type(e).__name__}: {e}); download"
      f" {OFFICIAL_URL} again. Nothing was written."
    ) from None
  missing = sorted(set(expected) - seen)
  if missing:
    raise FileNotFoundError(
      f"{source} lacks {', '.join(missing)}; it is not the CIFAR-10 binary"
      f" release. Download {OFFICIAL_URL}."
    )
  return dest


class _LocalDownloads:
  """Stands in for TFDS's download manager: the files are already here."""

  downloaded_size = 0

  def __init__(self, root: Path):
    self._root = root

  def download_and_extract(self, url):
    del url
    return os.fspath(self._root)


def import_cifar10(
  source: str | os.PathLike,
  data_dir: str | os.PathLike | None = None,
  expected_sha256: dict[str, str] = MEMBER_SHA256,
) -> Path:
  """Builds TFDS `cifar10` (array_record) in `data_dir` from a local copy.

  `source` is `cifar-10-binary.tar.gz` or its extracted folder; every member
  must match `expected_sha256` (the official digests) before anything is
  written. Needs TensorFlow (TFDS uses it to write the dataset); it is
  imported here only, with GPUs hidden from it. Returns the dataset's folder.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  tf.config.set_visible_devices([], "GPU")
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  from tensorflow_datasets.image_classification import cifar

  source = Path(source).expanduser()

  class LocalCifar10(cifar.Cifar10, skip_registration=True):
    name = DATASET

    def _split_generators(self, dl_manager):
      return super()._split_generators(self._local)

  builder = LocalCifar10(data_dir=data_dir, file_format="array_record")
  if builder.is_prepared():
    return Path(builder.data_dir)
  with _import_lock(Path(builder.data_dir)):
    # Another import may have finished while this one waited for the lock.
    builder = LocalCifar10(data_dir=data_dir, file_format="array_record")
    if builder.is_prepared():
      return Path(builder.data_dir)
    _remove_leftovers(Path(builder.data_dir))
    # Verify into a scratch folder outside data_dir: a bad archive leaves
    # data_dir exactly as it was.
    scratch = Path(tempfile.mkdtemp(prefix=SCRATCH_PREFIX))
    (scratch / OWNER_FILE).write_text(str(os.getpid()))
    try:
      builder._local = _LocalDownloads(  # pylint: disable=protected-access
        stage_members(source, scratch, expected_sha256)
      )
      builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(try_download_gcs=False)
      )
    finally:
      shutil.rmtree(scratch, ignore_errors=True)
  return Path(builder.data_dir)


SCRATCH_PREFIX = "actlab-cifar10-"
OWNER_FILE = "owner.pid"


def _alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True
  return True


def _remove_leftovers(dataset_dir: Path) -> None:
  """Deletes what killed imports left: scratch copies and TFDS's unfinished folders.

  Called with the import lock held, so no TFDS folder of a live import of
  this data_dir exists; a scratch folder is removed only when the process
  that made it is gone.
  """
  for scratch in Path(tempfile.gettempdir()).glob(SCRATCH_PREFIX + "*"):
    try:
      owner = int((scratch / OWNER_FILE).read_text())
    except (OSError, ValueError):
      continue  # not ours, or still being set up
    if not _alive(owner):
      logging.warning("Removing %s, left behind by a killed import.", scratch)
      shutil.rmtree(scratch, ignore_errors=True)
  parent = dataset_dir.parent
  if parent.is_dir():
    for unfinished in parent.glob("incomplete.*"):
      logging.warning("Removing %s, left behind by a killed import.", unfinished)
      shutil.rmtree(unfinished, ignore_errors=True)


@contextlib.contextmanager
def _import_lock(dataset_dir: Path) -> Iterator[None]:
  """One import per data_dir at a time (per machine): later ones wait, then reuse it.

  The lock file lives in the temporary directory, so a refused archive
  leaves data_dir untouched; the kernel drops the lock when its process dies.
  """
  key = hashlib.sha256(os.fspath(dataset_dir.absolute()).encode()).hexdigest()[:16]
  path = Path(tempfile.gettempdir()) / f"actlab-import-{key}.lock"
  fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
  try:
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      logging.warning("Another import into %s is running; waiting for it.", dataset_dir)
      fcntl.flock(fd, fcntl.LOCK_EX)
    yield
  finally:
    os.close(fd)
