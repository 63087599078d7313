"""The `actlab-sweep` command (`actlab.cli.sweep`, part of the installed package):

python scripts/sweep.py --help
"""

from actlab.cli import sweep

if __name__ == "__main__":
  sweep.run()
