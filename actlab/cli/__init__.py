"""actlab's commands, installed as console scripts (pyproject.toml) and
runnable as `python -m actlab.cli.NAME`:

  actlab-train   one experiment: a config file, a workdir (`train.py`)
  actlab-sweep   every condition of a study at every seed (`sweep.py`)
  actlab-report  tables, CSV and figures from saved runs (`report.py`)
  actlab-plot    figures of activations and their derivatives (`plot.py`)

The repository's experiments/main.py and scripts/*.py run the same code.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable


def importable_cwd() -> None:
  """Makes the current directory importable, as `python -m` does, so that
  'my_pkg.acts:fn' specs and `config.imports` find a project's own modules
  the same way from every command (a console script's sys.path starts with
  its bin/ folder, a script's with the script's folder)."""
  cwd = os.getcwd()
  if not any(p in ("", cwd) for p in sys.path):
    sys.path.insert(0, cwd)


def console(main: Callable[[], int]) -> None:
  """Runs a command's `main()` as a console script: exit status from it."""
  importable_cwd()
  sys.exit(main())
