"""Output warping: keep a few diverged runs from setting the scale of the whole surrogate.

A GP is fitted to standardised outcomes, so its signal variance, noise and lengthscales are measured in
units of the outcomes' spread. Training runs that diverge report losses several times the usual ones
(the Step Law table: median loss 2.43, upper quartile 2.56, yet 181 of its 1,911 runs above 4), and a
handful of them then make the spread, and with it every posterior standard deviation, large compared
with the differences between good configs: on steplaw seed 5 the target prediction of the recommended
config was 1.93 +- 1.14 for a true 2.13, while the configs within 0.25% of the optimum differ by 0.005.

:class:`OutputWarp` is the identity up to Tukey's "far out" fence ``tau = Q3 + 3 IQR`` of the values it is
fitted on and logarithmic above it, ``tau + s log(1 + (y - tau) / s)`` with ``s = IQR``: monotone, with
slope 1 at the fence, so the ranking of outcomes is kept, good configs are modelled in the caller's units,
and on steplaw (fence 3.39 on a random design) a loss of 7 counts as 4.05. Only the upper (worse, in minimisation units)
tail is warped: the good tail is where precision matters. Vizier's default GP bandit warps outputs for
the same reason (its half-rank warper); this one keeps the identity on the better side of the fence so
that the recommendation's predicted value needs no back-transform there. Why 3 and not Tukey's 1.5
("outside"): a random design on datamix has 12% of its values beyond 1.5 IQR and none beyond 3, so 1.5
would warp ordinary short runs of small models; steplaw's diverged runs lie 18 IQR out.

The scheduler fits the warp on every value reported so far (not on the prioritised fit set, see
:meth:`~schedulers.multiscale.scheduler.MultiScaleCostAwareBO._output_warp`).
The warp is frozen with the hyperparameters it was fitted with (:class:`~schedulers.multiscale.surrogate.Surrogate`),
like the standardisation, so a posterior is a function of the training set and the fit alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Tukey's fence multiplier: values beyond Q3 + 3 IQR are his "far out" values
FENCE_IQR = 3.0


@dataclass(frozen=True)
class OutputWarp:
    """``y -> y`` below ``fence``, ``fence + scale * log1p((y - fence) / scale)`` above (minimisation units).

    ``fence = inf`` is the identity."""

    fence: float = float("inf")
    scale: float = 1.0

    @classmethod
    def fit(cls, y: np.ndarray) -> "OutputWarp":
        """Tukey's upper fence and the interquartile range of ``n`` finite outcomes (identity when
        ``n < 4`` or the quartiles coincide: there is no spread to protect)."""
        y = np.asarray(y, dtype=float)
        if len(y) < 4:
            return cls()
        q1, q3 = np.percentile(y, [25.0, 75.0])
        iqr = float(q3 - q1)
        if not iqr > 0.0:
            return cls()
        return cls(float(q3 + FENCE_IQR * iqr), iqr)

    def __call__(self, y: np.ndarray) -> np.ndarray:
        """Warp ``n`` outcomes."""
        y = np.asarray(y, dtype=float)
        above = y > self.fence
        if not above.any():
            return y
        out = y.copy()
        out[above] = self.fence + self.scale * np.log1p((y[above] - self.fence) / self.scale)
        return out

    def inverse(self, w: np.ndarray) -> np.ndarray:
        """The outcome whose warp is ``w`` (``n`` -> ``n``)."""
        w = np.asarray(w, dtype=float)
        above = w > self.fence
        if not above.any():
            return w
        out = w.copy()
        out[above] = self.fence + self.scale * np.expm1((w[above] - self.fence) / self.scale)
        return out

    def inverse_slope(self, w: np.ndarray) -> np.ndarray:
        """``d inverse / d w`` at ``w``: turns a standard deviation on the warped scale into the caller's
        units (first order)."""
        w = np.asarray(w, dtype=float)
        return np.where(w > self.fence, np.exp(np.minimum(w - self.fence, 700.0 * self.scale) / self.scale), 1.0)
