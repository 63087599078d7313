"""CIFAR-10 through TFDS: offline import with digests, loading, scaling, errors."""

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, make_fake_cifar10, python_env

from actlab import data
from actlab.data import offline


def _as_set(images, labels):
  return sorted((x.tobytes(), int(y)) for x, y in zip(images, labels))


def test_import_then_load_gives_the_archives_images(fake_cifar10):
  data_dir, split = fake_cifar10
  for name in ("train", "test"):
    got = data.load(name, data_dir, download=False)
    want_x, want_y = split[name]
    assert got.images.dtype == np.uint8 and got.images.shape == want_x.shape
    assert got.labels.dtype == np.int32
    # TFDS stores examples in its own order; compare as sets of (image, label).
    assert _as_set(got.images, got.labels) == _as_set(want_x, want_y)


def test_import_from_extracted_folder(tmp_path):
  path, digests, split = make_fake_cifar10(tmp_path, per_batch=2, archive=False)
  data.import_cifar10(path, tmp_path / "tfds", expected_sha256=digests)
  assert data.load("test", tmp_path / "tfds", download=False).images.shape == (2, 32, 32, 3)


def test_official_digests_reject_a_fake_archive_by_member_name(tmp_path):
  path, _, _ = make_fake_cifar10(tmp_path, per_batch=2)
  with pytest.raises(data.ChecksumError, match=r"batches\.meta\.txt|data_batch_1\.bin"):
    data.import_cifar10(path, tmp_path / "tfds")
  assert not (tmp_path / "tfds").exists()


def test_corrupted_member_is_named_and_nothing_is_written(tmp_path):
  path, digests, _ = make_fake_cifar10(tmp_path, per_batch=2, archive=False)
  blob = bytearray((path / "data_batch_3.bin").read_bytes())
  blob[100] ^= 0xFF
  (path / "data_batch_3.bin").write_bytes(bytes(blob))
  with pytest.raises(data.ChecksumError) as err:
    data.import_cifar10(path, tmp_path / "tfds", expected_sha256=digests)
  assert "data_batch_3.bin" in str(err.value) and "download the archive again" in str(err.value)
  assert not (tmp_path / "tfds").exists()


def test_missing_member_and_missing_path(tmp_path):
  path, digests, _ = make_fake_cifar10(tmp_path, per_batch=2, archive=False)
  (path / "test_batch.bin").unlink()
  with pytest.raises(FileNotFoundError, match="test_batch.bin is missing"):
    data.import_cifar10(path, tmp_path / "tfds", expected_sha256=digests)
  with pytest.raises(FileNotFoundError, match="does not exist"):
    data.import_cifar10(tmp_path / "nope.tar.gz", tmp_path / "tfds")


def test_not_a_tar_archive(tmp_path):
  bad = tmp_path / "cifar-10-binary.tar.gz"
  bad.write_bytes(b"not a tarball")
  with pytest.raises(data.ChecksumError, match="not a readable tar archive"):
    data.import_cifar10(bad, tmp_path / "tfds")


def test_missing_data_offline_says_how_to_import(tmp_path):
  with pytest.raises(data.DataNotFoundError) as err:
    data.load("train", tmp_path / "empty", download=False)
  msg = str(err.value)
  assert "python -m actlab.data import" in msg and "cifar-10-binary.tar.gz" in msg
  assert str(tmp_path / "empty") in msg


def test_failed_download_says_how_to_import(tmp_path, monkeypatch):
  import tensorflow_datasets as tfds

  def no_network(self, *a, **k):
    raise ConnectionError("Name or service not known")

  monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", no_network)
  monkeypatch.setattr(data.cifar10, "_unreachable", lambda url: None)  # the probe passed
  with pytest.raises(data.DataNotFoundError, match="downloading it failed.*Name or service"):
    data.prepare(tmp_path, download=True)


def test_scalings():
  x = np.array([[[[0, 128, 255]]]], np.uint8)
  np.testing.assert_allclose(data.scale_images(x, "raw"), [[[[0, 128, 255]]]])
  np.testing.assert_allclose(data.scale_images(x, "unit"), [[[[0, 128 / 255, 1]]]])
  mean, std = data.cifar10.channel_stats(np.stack([x[0], 255 - x[0]]))
  z = np.asarray(data.scale_images(np.stack([x[0], 255 - x[0]]), "standardize", mean, std))
  np.testing.assert_allclose(z.reshape(-1, 3).mean(0), 0, atol=1e-4)
  np.testing.assert_allclose(z.reshape(-1, 3).std(0), 1, atol=1e-4)
  with pytest.raises(ValueError, match="Unknown input scaling"):
    data.scale_images(x, "minmax")


def test_member_digest_table_matches_the_official_release():
  assert set(offline.MEMBER_SHA256) == {
    "batches.meta.txt",
    "test_batch.bin",
    *(f"data_batch_{i}.bin" for i in range(1, 6)),
  }


def test_truncated_archive_is_a_checksum_error_not_an_eoferror(tmp_path):
  path, digests, _ = make_fake_cifar10(tmp_path, per_batch=2)
  path.write_bytes(path.read_bytes()[:-200])
  with pytest.raises(data.ChecksumError, match="truncated or corrupt"):
    data.import_cifar10(path, tmp_path / "tfds", expected_sha256=digests)
  assert not (tmp_path / "tfds").exists()


@pytest.mark.parametrize("split", ["bogus", "train[:150%]", "train[:0%]"])
def test_bad_split_names_say_what_splits_exist(fake_cifar10, split):
  data_dir, _ = fake_cifar10
  with pytest.raises(data.SplitError, match=r"'train' \(50,000\)|selects no examples"):
    data.load(split, data_dir, download=False)


def test_damaged_shard_says_to_reimport(fake_cifar10, tmp_path):
  data_dir, _ = fake_cifar10
  copy = tmp_path / "tfds"
  shutil.copytree(data_dir, copy)
  (shard,) = copy.rglob("cifar10-test.array_record*")
  shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
  with pytest.raises(data.DataNotFoundError, match="missing or corrupt.*actlab.data import"):
    data.load("test", copy, download=False)


def test_unreachable_server_fails_at_once_with_offline_instructions(tmp_path, monkeypatch):
  import socket

  import tensorflow_datasets as tfds

  def must_not_download(self, *a, **k):
    pytest.fail("tried to download although the server cannot be reached")

  monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", must_not_download)
  for key in ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
    monkeypatch.delenv(key, raising=False)

  def no_dns(*a, **k):
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

  monkeypatch.setattr(socket, "getaddrinfo", no_dns)
  with pytest.raises(data.DataNotFoundError, match=r"(?s)cannot resolve.*actlab.data import"):
    data.prepare(tmp_path, download=True)

  with socket.socket() as s:  # a port nobody listens on
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
  closed = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
  monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: closed)
  with pytest.raises(data.DataNotFoundError, match=r"(?s)cannot connect.*actlab.data import"):
    data.prepare(tmp_path, download=True)


def test_an_unreachable_proxy_fails_within_the_stated_wait(tmp_path, monkeypatch):
  import socket

  import tensorflow_datasets as tfds

  def must_not_download(self, *a, **k):
    pytest.fail("tried to download although the proxy cannot be reached")

  monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", must_not_download)
  with socket.socket() as s:  # a port nobody listens on
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
  for key in ("no_proxy", "NO_PROXY"):
    monkeypatch.delenv(key, raising=False)
  monkeypatch.setenv("https_proxy", f"http://127.0.0.1:{port}")
  with pytest.raises(data.DataNotFoundError, match=rf"(?s)proxy.*127.0.0.1:{port}.*data import"):
    data.prepare(tmp_path, download=True)

  def silent(self, address):  # a proxy address that never answers (10.255.255.1)
    raise TimeoutError("timed out")

  monkeypatch.setenv("https_proxy", "http://10.255.255.1:3128")
  monkeypatch.setattr(socket.socket, "connect", silent)
  with pytest.raises(
    data.DataNotFoundError, match=r"(?s)proxy.*no answer from 10.255.255.1:3128 within 10 s"
  ):
    data.prepare(tmp_path, download=True)


def test_killed_import_leftovers_are_removed_on_the_next_import(tmp_path):
  path, digests, _ = make_fake_cifar10(tmp_path, per_batch=2)
  dead = subprocess.Popen(["true"])
  dead.wait()
  scratch = Path(tempfile.mkdtemp(prefix=offline.SCRATCH_PREFIX))
  (scratch / offline.OWNER_FILE).write_text(str(dead.pid))
  (scratch / "cifar-10-batches-bin").mkdir()
  unfinished = tmp_path / "tfds" / "cifar10" / "incomplete.ABCDEF_3.0.2"
  unfinished.mkdir(parents=True)
  data.import_cifar10(path, tmp_path / "tfds", expected_sha256=digests)
  assert not scratch.exists() and not unfinished.exists()
  assert data.load("test", tmp_path / "tfds", download=False).images.shape == (2, 32, 32, 3)


def test_two_imports_into_one_fresh_data_dir_both_succeed(tmp_path):
  path, digests, _ = make_fake_cifar10(tmp_path, per_batch=2)
  code = (
    "import sys, json; from actlab import data;"
    f"data.import_cifar10({str(path)!r}, {str(tmp_path / 'tfds')!r}, json.loads(sys.argv[1]))"
  )
  procs = [
    subprocess.Popen(
      [sys.executable, "-c", code, json.dumps(digests)],
      cwd=ROOT,
      env=python_env(),
      stderr=subprocess.PIPE,
      text=True,
    )
    for _ in range(2)
  ]
  for p in procs:
    _, err = p.communicate(timeout=240)
    assert p.returncode == 0, err[-3000:]
  assert data.load("train", tmp_path / "tfds", download=False).images.shape == (10, 32, 32, 3)
