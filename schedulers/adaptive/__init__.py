"""In-trial adaptation policies: a trial's mixture group changed while it trains, from the per-domain
losses it reports (issue 17). The contract is in :mod:`schedulers.adaptive.base`.

- :class:`~schedulers.adaptive.exp3.Exp3Mixing` (``exp3``): Online Data Mixing, an EXP3 bandit whose
  reward is the domain's loss (Albalak et al. 2024).
- :class:`~schedulers.adaptive.learnable.LearnableLossMixing` (``learnable_loss``): domains weighted by
  their remaining learnable loss from per-domain scaling-law fits (after Jiang et al. 2024).
- :class:`~schedulers.adaptive.setup.AdaptiveSetup`: a study's setup (policy, group, options, tuned
  hyperparameters), validated against its search space.
"""

from schedulers.adaptive.base import AdaptationPolicy, AdaptEventKind, AdaptiveTrial, Mixture, PolicyKind
from schedulers.adaptive.errors import (AdaptationError, AdaptationReplayError, InvalidAdaptationError,
                                        UnknownAdaptiveTrialError)
from schedulers.adaptive.registry import make_policy, policy_class
from schedulers.adaptive.setup import AdaptiveSetup

__all__ = [
    "AdaptEventKind", "AdaptationError", "AdaptationPolicy", "AdaptationReplayError", "AdaptiveSetup",
    "AdaptiveTrial", "InvalidAdaptationError", "Mixture", "PolicyKind", "UnknownAdaptiveTrialError",
    "make_policy", "policy_class",
]
