"""A synthetic multi-domain language corpus made at run time (no downloads).

Each domain is a second-order Markov chain over a shared vocabulary: ``P(x_t | x_{t-2}, x_{t-1})`` mixes a
bigram table (learnt in a few dozen steps) with a trigram table (which needs attention to the previous
position and more capacity, so wider models and longer runs keep improving). Tables are drawn once from
Dirichlets whose concentration differs by domain (a low concentration gives a predictable, "code-like"
domain; a high one a noisy, "prose-like" domain), and the domains share part of their structure so that
training on one helps on another, the way real data mixtures behave. The entropy rate of each domain is
the floor of its achievable loss.

Batches are drawn on the fly from a ``numpy`` generator seeded by the caller (the trainer seeds it with
(seed, step) so a resumed run sees the batches an uninterrupted one would). Shapes: a batch is
``batch x (seq_len + 1)`` int64 tokens; inputs are ``[:, :-1]`` and next-token targets ``[:, 1:]``.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import torch

#: default domains and their Dirichlet concentrations (lower = more predictable)
DEFAULT_DOMAINS: dict[str, float] = {"code": 0.05, "math": 0.15, "prose": 0.6}


class MarkovCorpus:
    """Domains of second-order Markov text over ``vocab`` tokens, built deterministically from ``seed``."""

    def __init__(self, vocab: int = 32, domains: Mapping[str, float] | Sequence[str] | None = None,
                 shared: float = 0.5, bigram: float = 0.6, seed: int = 0) -> None:
        if domains is None:
            domains = DEFAULT_DOMAINS
        if not isinstance(domains, Mapping):
            domains = {name: DEFAULT_DOMAINS.get(name, 0.2) for name in domains}
        self.vocab = int(vocab)
        self.domains = list(domains)
        rng = np.random.default_rng(seed)
        v = self.vocab
        common_bi = rng.dirichlet(np.full(v, 0.1), size=v)[None, :, :]
        common_tri = rng.dirichlet(np.full(v, 0.1), size=(v, v))
        tables = []
        for name in self.domains:
            alpha = float(domains[name])
            bi = shared * common_bi + (1.0 - shared) * rng.dirichlet(np.full(v, alpha), size=v)[None, :, :]
            tri = shared * common_tri + (1.0 - shared) * rng.dirichlet(np.full(v, alpha), size=(v, v))
            tables.append(bigram * bi + (1.0 - bigram) * tri)
        #: D x V x V x V cumulative transition tables, float64 for exact sampling
        self._cdf = np.cumsum(np.stack(tables), axis=-1)
        self._cdf[..., -1] = 1.0

    def mixture_weights(self, weights: Mapping[str, float] | None) -> np.ndarray:
        """Normalised domain weights from a ``{domain: weight}`` mapping (missing -> uniform)."""
        if not weights or not any(k in weights for k in self.domains):
            return np.full(len(self.domains), 1.0 / len(self.domains))
        w = np.array([max(float(weights.get(k, 0.0)), 0.0) for k in self.domains])
        return w / w.sum() if w.sum() > 0 else np.full(len(self.domains), 1.0 / len(self.domains))

    def sample(self, rng: np.random.Generator, batch: int, seq_len: int,
               mixture: np.ndarray | None = None) -> torch.Tensor:
        """``batch x (seq_len + 1)`` tokens; each sequence comes from one domain drawn from ``mixture``."""
        return self.sample_labelled(rng, batch, seq_len, mixture)[0]

    def sample_labelled(self, rng: np.random.Generator, batch: int, seq_len: int,
                        mixture: np.ndarray | None = None) -> tuple[torch.Tensor, np.ndarray]:
        """:meth:`sample` (the same draws from ``rng``) and each sequence's domain index (``batch``)."""
        mixture = np.full(len(self.domains), 1.0 / len(self.domains)) if mixture is None else mixture
        dom = rng.choice(len(self.domains), size=batch, p=mixture)
        tok = np.empty((batch, seq_len + 1), dtype=np.int64)
        tok[:, :2] = rng.integers(0, self.vocab, size=(batch, 2))
        u = rng.random((batch, seq_len + 1))
        for t in range(2, seq_len + 1):
            cdf = self._cdf[dom, tok[:, t - 2], tok[:, t - 1]]      # batch x V
            tok[:, t] = np.minimum((cdf < u[:, t:t + 1]).sum(axis=1), self.vocab - 1)
        return torch.from_numpy(tok), dom
