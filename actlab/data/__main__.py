"""Command line for the data: `python -m actlab.data import PATH [--data_dir DIR]`.

Prepares TFDS `cifar10` from a local `cifar-10-binary.tar.gz` (or its
extracted `cifar-10-batches-bin/` folder) without a network, after checking
every member file against the official SHA-256 digests.
"""

import argparse
import sys

from actlab.data.cifar10 import default_data_dir
from actlab.data.offline import ChecksumError, import_cifar10


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog="python -m actlab.data", description=__doc__.split("\n")[0])
  sub = parser.add_subparsers(dest="command", required=True)
  imp = sub.add_parser("import", help="prepare cifar10 from a local copy of the official release")
  imp.add_argument("path", help="cifar-10-binary.tar.gz or the cifar-10-batches-bin/ folder")
  imp.add_argument(
    "--data_dir",
    default=None,
    help=f"TFDS data directory (default: $TFDS_DATA_DIR or {default_data_dir()})",
  )
  args = parser.parse_args(argv)
  try:
    out = import_cifar10(args.path, args.data_dir)
  except (ChecksumError, FileNotFoundError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  print(f"CIFAR-10 is ready in {out}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
