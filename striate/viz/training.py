"""Training curves and the confusion matrix."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .mpl import plt, save

__all__ = ["plot_curves", "plot_confusion"]


def plot_curves(epochs: Sequence[dict], path, title: str = "") -> None:
    """Loss and accuracy per epoch, train and test, side by side.

    ``epochs`` is the ``metrics.json`` list: dicts with epoch, train_loss,
    train_acc, test_loss, test_acc.
    """
    x = [e["epoch"] for e in epochs]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for key, label in (("train_loss", "train"), ("test_loss", "test")):
        values = [e.get(key) for e in epochs]
        if any(v is not None for v in values):
            ax_loss.plot(x, values, marker="o", label=label)
    for key, label in (("train_acc", "train"), ("test_acc", "test")):
        values = [100 * e[key] if e.get(key) is not None else None for e in epochs]
        if any(v is not None for v in values):
            ax_acc.plot(x, values, marker="o", label=label)
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy loss", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    best = max((e.get("test_acc") or 0 for e in epochs), default=0)
    if best:
        ax_acc.axhline(100 * best, color="grey", lw=0.8, ls="--")
        ax_acc.annotate(f"best test {100 * best:.2f}%", (x[0], 100 * best), va="bottom", fontsize=8)
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
        if len(x) < 20:
            ax.set_xticks(x)
    if title:
        fig.suptitle(title)
    save(fig, path)


def plot_confusion(matrix: np.ndarray, class_names: Sequence[str], path, title: str = "") -> None:
    """A K×K confusion matrix: rows are true classes, columns predictions, counts written in."""
    matrix = np.asarray(matrix)
    k = matrix.shape[0]
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * k, 0.8 + 0.7 * k))
    shown = np.log1p(matrix)
    ax.imshow(shown, cmap="Blues")
    threshold = shown.max() / 2 if shown.size else 0
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(int(matrix[i, j])), ha="center", va="center", fontsize=8,
                    color="white" if shown[i, j] > threshold else "black")
    ax.set_xticks(range(k), labels=class_names, rotation=45, ha="right")
    ax.set_yticks(range(k), labels=class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    total = matrix.sum()
    accuracy = np.trace(matrix) / total if total else 0.0
    ax.set_title(title or f"test accuracy {100 * accuracy:.2f}% ({int(np.trace(matrix))}/{int(total)})")
    save(fig, path)
