"""Draw scaling panels (:mod:`schedulers.scaling.plot_data`) to a PNG with matplotlib's Agg backend.

matplotlib is imported here only, on first use, so the rest of the package never pays for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from schedulers.scaling.errors import InvalidScalingDataError
from schedulers.scaling.plot_data import PlotPanel


def draw_panels(panels: Sequence[PlotPanel], path: str | Path, *, dpi: int = 90,
                references: dict[str, Sequence[tuple[Sequence[float], Sequence[float], str]]] | None = None) -> Path:
    """Write one log-log axis per panel to ``path`` (PNG). ``references`` adds dashed curves per
    quantity, e.g. a published law: ``{"lr": [(x, y, "published"), ...]}``."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    if not panels:
        raise InvalidScalingDataError("nothing to plot: no law was fitted", field="plot")
    path = Path(path)
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.8), squeeze=False)
    cmap = plt.get_cmap("viridis")
    for ax, panel in zip(axes[0], panels):
        colors = {c.label: cmap(0.85 * i / max(len(panel.curves) - 1, 1)) for i, c in enumerate(panel.curves)}
        for c in panel.curves:
            ax.fill_between(c.x, c.low, c.high, color=colors[c.label], alpha=0.18, linewidth=0)
            ax.plot(c.x, c.value, color=colors[c.label], linewidth=1.5, label=c.label)
        for label in colors:
            xs = [x for x, _, lab in panel.points if lab == label]
            ys = [y for _, y, lab in panel.points if lab == label]
            ax.scatter(xs, ys, color=colors[label], s=14, edgecolor="black", linewidth=0.4, zorder=3)
        for x, y, label in (references or {}).get(panel.quantity, []):
            ax.plot(x, y, "--", color="crimson", linewidth=1.2, label=label)
        ax.set_xscale("log")
        ax.set_yscale("log")
        # plain numbers on the loss axis: a log axis spanning less than a decade otherwise prints 2x10^0
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.3g}"))
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:.3g}"))
        ax.set_xlabel(panel.variable)
        ax.set_ylabel(panel.quantity)
        ax.set_title(panel.title, fontsize=8)
        ax.legend(fontsize=6, loc="best")
        ax.grid(True, which="both", alpha=0.2)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path
