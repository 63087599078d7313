"""The `actlab-report` command (`actlab.cli.report`, part of the installed package):

python scripts/report.py --help
"""

from actlab.cli import report

if __name__ == "__main__":
  report.run()
