"""`curves.png`: training curves drawn with matplotlib (headless, Agg)."""

from __future__ import annotations

from pathlib import Path

import matplotlib
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from kgan.runs import atomic_path

matplotlib.use("Agg")  # files only, never a window

PANELS = (  # (title, y label, metric keys): drawn when the first key has data
    ("Losses", "loss", ("d_loss", "g_loss")),
    ("Discriminator output", "mean logit", ("d_real", "d_fake")),
    ("Adaptive augmentation", "p, and D's r_t", ("ada_p", "r_t")),
    ("Sample quality", "distance (lower is better)", ("fid", "kid")),
)


def curves(records: list[dict], path: Path, title: str = "") -> Path:
    """Plots each metric against epoch, one panel per group that has data; writes atomically."""
    panels = []
    for panel_title, ylabel, keys in PANELS:
        present = [k for k in keys if any(k in r for r in records)]
        if present and present[0] == keys[0]:
            panels.append((panel_title, ylabel, present))
    fig = Figure(figsize=(5 * max(len(panels), 1), 3.6), layout="constrained")
    for i, (panel_title, ylabel, keys) in enumerate(panels, 1):
        ax = fig.add_subplot(1, len(panels), i)
        for key in keys:
            points = [(r["epoch"], r[key]) for r in records if isinstance(r.get(key), (int, float))]
            ax.plot(*zip(*points), marker="o" if len(points) < 30 else None, label=key)
        ax.set(title=panel_title, xlabel="epoch", ylabel=ylabel)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    return path
