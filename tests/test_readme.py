"""Every Python block of the README runs as written, outside the repository."""

import re
import subprocess
import sys

import pytest
from conftest import ROOT

BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)


def test_readme_has_python_blocks():
  assert len(BLOCKS) >= 3


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_python_block_runs(index, tmp_path):
  script = tmp_path / f"block_{index}.py"
  script.write_text(BLOCKS[index])
  out = subprocess.run(
    [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=600,
    env={"PATH": "/usr/bin:/bin", "JAX_PLATFORMS": "cpu", "HOME": str(tmp_path)},
  )
  assert out.returncode == 0, f"README block {index}:\n{BLOCKS[index]}\n{out.stderr[-3000:]}"


def _documented_commands():
  """Every file whose text holds commands a reader copies."""
  yield ROOT / "README.md"
  yield from sorted((ROOT / "docs").glob("*.md"))
  yield from sorted((ROOT / "experiments").rglob("*.py"))
  yield from sorted((ROOT / "scripts").rglob("*.py"))
  yield from sorted((ROOT / "scripts/cluster").glob("*"))
  yield from sorted((ROOT / "actlab").rglob("*.py"))


# Shown as the mistakes the error messages answer.
MISSPELT_ON_PURPOSE = {"learning_rate", "optim.learning_rat"}


def test_every_documented_config_flag_names_a_real_field():
  from actlab.config import base_config, leaf_paths

  fields = set(leaf_paths(base_config())) | MISSPELT_ON_PURPOSE
  bad = [
    f"{path.relative_to(ROOT)}: --config.{flag}"
    for path in _documented_commands()
    if path.is_file()
    for flag in re.findall(r"--config\.([a-z_][\w.]*[a-z_0-9])=", path.read_text())
    if flag not in fields
  ]
  assert not bad, "flags naming no config field:\n" + "\n".join(bad)
