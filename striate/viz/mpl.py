"""matplotlib set up for files only (no display needed)."""
import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402

__all__ = ["plt", "save"]


def save(fig, path) -> None:
    """Write ``fig`` to ``path`` and release its memory."""
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
