"""Run the Step Law procedure on the released dense sweep and compare with the published law.

    python -m schedulers.scaling.steplaw_check --data ../shared/benchdata/steplaw --plot docs/img/steplaw_fit.png

The table (``dense_lr_bs_loss.csv``, from the public repository step-law/steplaw) is read from ``--data``
(default: ``$SCALELADDER_BENCHDATA/steplaw``, else ``../shared/benchdata/steplaw`` beside the repository);
it is never copied. The procedure: per (N, D) cell keep runs within 0.25% of the best smoothed loss, fit
``log lr = a + b log N + c log D`` and ``log bs = d + e log D`` (bs in tokens) by least squares, bootstrap
the kept runs. The released table is a subset of the paper's runs, so the fit is reported as found,
next to the published law, never adjusted toward it.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from schedulers.scaling.errors import InvalidScalingDataError
from schedulers.scaling.hyperparameter_law import (STEP_LAW_TOLERANCE, HyperparameterLaw, LogLinearLaw,
                                                   fit_hyperparameter_law)
from schedulers.scaling.loss_law import HuberFitOptions, LossLawFit, fit_chinchilla

FILE_NAME = "dense_lr_bs_loss.csv"
SEQ_LEN = 2048  # tokens per sequence: the table's bs is in sequences, the law's in tokens
REGRESSORS = {"lr": ("N", "D"), "bs": ("D",)}

#: Li et al. (2025): lr = 1.79 N^-0.713 D^0.307, bs = 0.58 D^0.571, with their bootstrap ranges
PUBLISHED = {
    "lr": (1.79, {"N": -0.713, "D": 0.307}),
    "bs": (0.58, {"D": 0.571}),
}
PUBLISHED_RANGES = {("lr", "N"): (-0.774, -0.655), ("lr", "D"): (0.271, 0.345), ("bs", "D"): (0.534, 0.606)}


def default_data_dir() -> Path:
    root = os.environ.get("SCALELADDER_BENCHDATA")
    base = Path(root) if root else Path(__file__).resolve().parents[2].parent / "shared" / "benchdata"
    return base / "steplaw"


@dataclass(frozen=True)
class SteplawTable:
    """The dense sweep as columns (length ``n`` each); ``bs`` in tokens, ``loss`` the smoothed loss."""

    n_params: np.ndarray
    data: np.ndarray
    lr: np.ndarray
    bs: np.ndarray
    loss: np.ndarray

    def subset(self, mask: np.ndarray) -> "SteplawTable":
        return SteplawTable(self.n_params[mask], self.data[mask], self.lr[mask], self.bs[mask], self.loss[mask])


def load_table(data_dir: str | Path) -> SteplawTable:
    path = Path(data_dir) / FILE_NAME
    if not path.is_file():
        raise InvalidScalingDataError(f"{path} not found (the Step Law table: public repository step-law/steplaw, "
                                      f"folder data/)", field="data")
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    col = lambda k: np.array([float(r[k]) for r in rows])  # noqa: E731
    return SteplawTable(col("N"), col("D"), col("lr"), col("bs") * SEQ_LEN, col("smooth loss"))


def fit_table(table: SteplawTable, *, n_bootstrap: int = 1000, seed: int = 0,
              tolerance: float = STEP_LAW_TOLERANCE) -> HyperparameterLaw:
    return fit_hyperparameter_law(table.n_params, table.data, table.loss, {"lr": table.lr, "bs": table.bs},
                                  REGRESSORS, tolerance=tolerance, n_bootstrap=n_bootstrap, seed=seed)


def published_law(name: str) -> LogLinearLaw:
    coef, exps = PUBLISHED[name]
    regs = tuple(exps)
    beta = np.array([math.log(coef)] + [exps[r] for r in regs])
    return LogLinearLaw(name, regs, beta, np.empty((0, 1 + len(regs))), 0.0, 0.95)


def _published_value(name: str, n: float, d: float) -> float:
    coef, exps = PUBLISHED[name]
    return coef * n ** exps.get("N", 0.0) * d ** exps.get("D", 0.0)


def _nearest_run_gap(table: SteplawTable, cell: np.ndarray, lr: float, bs: float) -> tuple[float, float, float]:
    """The cell's run closest to (lr, bs) in log space: its lr, bs and loss relative to the cell's best."""
    idx = np.flatnonzero(cell)
    dist = np.log(table.lr[idx] / lr) ** 2 + np.log(table.bs[idx] / bs) ** 2
    j = idx[np.argmin(dist)]
    best = table.loss[idx].min()
    return float(table.lr[j]), float(table.bs[j]), float(table.loss[j] / best - 1.0)


@dataclass
class SteplawComparison:
    law: HyperparameterLaw
    held_out: HyperparameterLaw
    largest: tuple[float, float]
    table: SteplawTable
    loss_law: LossLawFit | None

    def markdown(self) -> str:
        law, (n, d) = self.law, self.largest
        lines = [
            f"Runs: {law.n_runs} in {len(law.cells)} (N, D) cells; kept within {law.tolerance:.2%} of the cell's "
            f"best smoothed loss: {law.n_kept}. Bootstrap: {law.laws['lr'].bootstrap_beta.shape[0]} resamples "
            f"of the kept runs, {law.level:.0%} percentile intervals.",
            "",
            "| quantity | published (Li et al. 2025) | published bootstrap range | this re-fit | re-fit 95% interval |",
            "|---|---|---|---|---|",
        ]
        for name in ("lr", "bs"):
            fitted = law.laws[name]
            coef, exps = PUBLISHED[name]
            c = fitted.coefficient
            lines.append(f"| {name}: coefficient | {coef:g} | - | {c.value:.3g} | [{c.low:.3g}, {c.high:.3g}] |")
            for reg, e in fitted.exponents.items():
                lo, hi = PUBLISHED_RANGES.get((name, reg), (math.nan, math.nan))
                lines.append(f"| {name}: {reg} exponent | {exps[reg]:+.3f} | [{lo:+.3f}, {hi:+.3f}] | "
                             f"{e.value:+.3f} | [{e.low:+.3f}, {e.high:+.3f}] |")
        cell = (self.table.n_params == n) & (self.table.data == d)
        best = np.flatnonzero(cell)[np.argmin(self.table.loss[cell])]
        lines += [
            "",
            f"Predictions at the largest cell, N = {n:.3g}, D = {d:.3g} (loss gap: the cell's run nearest the "
            "prediction in log lr, log bs, relative to the cell's best smoothed loss):",
            "",
            "| source | lr | bs (tokens) | nearest run (lr, bs) | loss gap |",
            "|---|---|---|---|---|",
        ]
        rows = [("published law", _published_value("lr", n, d), None, _published_value("bs", n, d), None)]
        for label, fitted in (("this re-fit (all 17 cells)", self.law),
                              ("this re-fit without the largest cell", self.held_out)):
            pred = {p.name: p.value for p in fitted.predict_optimum(n, d)}
            rows.append((label, pred["lr"].value, pred["lr"], pred["bs"].value, pred["bs"]))
        kept = [c for c in self.law.cells if c.n_params == n and c.data == d][0].optimum
        rows.append(("measured: geometric mean of the kept runs", kept["lr"], None, kept["bs"], None))
        rows.append(("measured: best run", float(self.table.lr[best]), None, float(self.table.bs[best]), None))
        for label, lr, lr_e, bs, bs_e in rows:
            nl, nb, gap = _nearest_run_gap(self.table, cell, lr, bs)
            lr_s = f"{lr:.3g}" + (f" [{lr_e.low:.3g}, {lr_e.high:.3g}]" if lr_e else "")
            bs_s = f"{bs:.3g}" + (f" [{bs_e.low:.3g}, {bs_e.high:.3g}]" if bs_e else "")
            lines.append(f"| {label} | {lr_s} | {bs_s} | ({nl:.3g}, {nb:.3g}) | {gap:+.3%} |")
        if self.loss_law is not None:
            co = self.loss_law.coefficients
            lines += ["", "Loss law on the 17 cell minima (Huber, delta 1e-3, L-BFGS from Chinchilla's grid, "
                      f"{self.loss_law.bootstrap_theta.shape[0]} bootstrap resamples): "
                      + ", ".join(f"{k} = {e.value:.4g} [{e.low:.4g}, {e.high:.4g}]" for k, e in co.items())
                      + f"; log RMSE {self.loss_law.log_rmse:.4f}."]
        return "\n".join(lines)

    def plot(self, path: str | Path) -> Path:
        from schedulers.scaling.plot import draw_panels
        from schedulers.scaling.plot_data import hyperparameter_panels

        panels = hyperparameter_panels(self.law)
        refs = {}
        for panel in panels:
            ref = published_law(panel.quantity)
            other = "N" if panel.variable == "D" else "D"
            curves = []
            for c in panel.curves:
                fixed = float(c.label.split("=")[1]) if "=" in c.label else float(np.median(
                    self.table.n_params if other == "N" else self.table.data))
                logs = {panel.variable: np.log(c.x), other: np.full(c.x.size, math.log(fixed))}
                curves.append((c.x, np.exp(ref.design(logs) @ ref.beta),
                               "published" if not curves else "_nolegend_"))
            refs[panel.quantity] = curves
        return draw_panels(panels, path, references=refs, dpi=70)


def run_check(data_dir: str | Path, *, n_bootstrap: int = 1000, loss_bootstrap: int = 100,
              seed: int = 0) -> SteplawComparison:
    table = load_table(data_dir)
    law = fit_table(table, n_bootstrap=n_bootstrap, seed=seed)
    largest = max({(float(a), float(b)) for a, b in zip(table.n_params, table.data)}, key=lambda nd: nd[0] * nd[1])
    not_largest = ~((table.n_params == largest[0]) & (table.data == largest[1]))
    held_out = fit_table(table.subset(not_largest), n_bootstrap=n_bootstrap, seed=seed)
    loss_law = None
    if loss_bootstrap >= 0:
        cells = [c for c in law.cells if math.isfinite(c.best_loss)]
        loss_law = fit_chinchilla([c.n_params for c in cells], [c.data for c in cells], [c.best_loss for c in cells],
                                  HuberFitOptions(n_bootstrap=loss_bootstrap, seed=seed))
    return SteplawComparison(law, held_out, largest, table, loss_law)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=default_data_dir(), help="folder holding " + FILE_NAME)
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--loss-bootstrap", type=int, default=100, help="-1 skips the loss-law fit")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--plot", type=Path, default=None, help="write the fit with the published law to this PNG")
    ap.add_argument("--loss-plot", type=Path, default=None, help="write the loss-law fit L(N, D) to this PNG")
    ap.add_argument("--out", type=Path, default=None, help="also write the markdown table here")
    args = ap.parse_args(argv)
    result = run_check(args.data, n_bootstrap=args.bootstrap, loss_bootstrap=args.loss_bootstrap, seed=args.seed)
    text = result.markdown()
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    if args.plot:
        print(f"\nplot: {result.plot(args.plot)}")
    if args.loss_plot and result.loss_law is not None:
        from schedulers.scaling.plot import draw_panels
        from schedulers.scaling.plot_data import loss_panel

        print(f"loss-law plot: {draw_panels([loss_panel(result.loss_law)], args.loss_plot, dpi=70)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
