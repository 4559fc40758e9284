"""Width parametrizations: how initialisation, multipliers and Adam learning rates scale with width.

The Maximal Update Parametrization (muP, Yang et al., Tensor Programs V) as tabulated in the seed notes
(``../shared/seeds/004_*``), written relative to a base width so that at ``width == base_width`` muP and
the standard parametrization (SP) are the same model; with ``r = width / base_width``:

==================  ==============================  ==============================
parameter class     muP                             SP
==================  ==============================  ==============================
input (embeddings)  init std sigma, Adam LR eta     same
hidden matrices     init std sigma/sqrt(fan_in),    init std sigma/sqrt(fan_in),
                    Adam LR eta / r                 Adam LR eta
output (readout)    init std sigma/sqrt(fan_in),    init std sigma/sqrt(fan_in),
                    forward multiplier 1/r,         multiplier 1, Adam LR eta
                    Adam LR eta
vectors (LN, bias)  Adam LR eta                     same
attention logits    q.k * sqrt(d_base) / d          q.k / sqrt(d)
==================  ==============================  ==============================

The readout multiplier 1/r with Adam LR eta is the table's "init var 1/fan_in^2, Adam LR eta/fan_in" in
the multiplier form the ``mup`` package uses (the effective weight is w/r). Attention 1/d instead of
1/sqrt(d) keeps attention logits Theta(1) once queries and keys become correlated by training.
"""

from __future__ import annotations

import enum
import math


class Parametrization(str, enum.Enum):
    MUP = "mup"
    SP = "sp"


class ParamClass(str, enum.Enum):
    """Role of a weight tensor for width scaling (infinite dimensions: input 1 out, hidden 2, output 1 in)."""

    INPUT = "input"
    HIDDEN = "hidden"
    OUTPUT = "output"
    VECTOR = "vector"


class WidthScaling:
    """The per-class rules of one parametrization at one width (see the module table)."""

    def __init__(self, parametrization: Parametrization, width: int, base_width: int) -> None:
        if width < 1 or base_width < 1:
            raise ValueError("widths must be >= 1")
        self.parametrization = Parametrization(parametrization)
        self.width = int(width)
        self.base_width = int(base_width)
        self.ratio = self.width / self.base_width

    @property
    def is_mup(self) -> bool:
        return self.parametrization is Parametrization.MUP

    def init_std(self, kind: ParamClass, fan_in: int, sigma: float = 1.0) -> float:
        """Initial standard deviation of a weight of class ``kind`` with ``fan_in`` inputs."""
        if kind is ParamClass.INPUT:
            return sigma
        return sigma / math.sqrt(fan_in)

    def lr_scale(self, kind: ParamClass) -> float:
        """Factor on the base Adam learning rate."""
        return 1.0 / self.ratio if (self.is_mup and kind is ParamClass.HIDDEN) else 1.0

    def output_multiplier(self) -> float:
        """Forward multiplier on the readout's logits."""
        return 1.0 / self.ratio if self.is_mup else 1.0

    def attention_scale(self, head_dim: int, base_head_dim: int) -> float:
        """Factor on ``q . k`` in the attention logits."""
        if self.is_mup:
            return math.sqrt(base_head_dim) / head_dim
        return 1.0 / math.sqrt(head_dim)
