"""An instrumented objective for adaptation policies: per-domain losses of a simulated trainer whose
domain ``k`` follows ``L_k = E_k + A_k n_k^-alpha_k``, ``n_k`` the samples of domain k it has trained on
(so what the policy sends changes what it later observes)."""

from __future__ import annotations

import numpy as np

from schedulers.adaptive import AdaptationPolicy

COMPONENTS = ("code", "math", "prose")


def run(policy: AdaptationPolicy, trial_id: int, e, a, alpha, *, steps: int = 300, every: int = 10,
        batch: int = 16, initial=None, hyper=None, noise: float = 0.0, seed: int = 0) -> list[dict[str, float]]:
    """Train ``steps`` steps reporting every ``every``; returns every mixture the policy sent."""
    rng = np.random.default_rng(seed)
    e, a, alpha = (np.asarray(x, dtype=float) for x in (e, a, alpha))
    w = policy.start(trial_id, initial, hyper)
    sent = [w]
    n = np.ones(len(COMPONENTS))
    for step in range(every, steps + 1, every):
        n += every * batch * np.array([w[c] for c in policy.components])
        loss = e + a * n ** -alpha + noise * rng.normal(size=n.size)
        w = policy.observe(trial_id, step, dict(zip(policy.components, loss)))
        sent.append(w)
    return sent
