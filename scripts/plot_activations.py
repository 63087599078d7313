"""The `actlab-plot` command (`actlab.cli.plot`, part of the installed package):

python scripts/plot_activations.py --help
"""

from actlab.cli import plot

if __name__ == "__main__":
  plot.run()
