"""matplotlib set up for files only (no display needed), unless a backend is already chosen."""
import os
import sys

import matplotlib

# A notebook's inline backend (or one named in $MPLBACKEND) is kept: switching to Agg
# there would stop every later figure of the notebook from showing.
if "matplotlib.pyplot" not in sys.modules and not os.environ.get("MPLBACKEND"):
    matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402

__all__ = ["plt", "save"]


def save(fig, path) -> None:
    """Write ``fig`` to ``path`` and release its memory."""
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
