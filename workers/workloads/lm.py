"""The transformer language-model workloads: ``mup_transformer`` and ``sp_transformer``.

Both train :class:`~workers.workloads.transformer.TransformerLM` with Adam (constant LR after a short
linear warm-up, so continuing a paused run to a larger step budget is the same run as one trained to that
budget directly) on the :class:`~workers.workloads.corpus.MarkovCorpus`, and report the validation loss
(nats per token) on a fixed held-out batch drawn from the evaluation mixture, with the loss of each
domain's sequences of that batch as ``domains``. Training batches are drawn from the current mixture: the
trial's own, then (in an adaptive study) whatever the reporter answers (``config["adapted"]`` at a resume).

Hyperparameters read from ``config["params"]`` (all optional): ``lr`` (base Adam LR, default 3e-3),
``init_scale`` (sigma, default 1), ``output_mult`` (default 1), ``attn_mult`` (default 1),
``weight_decay`` (default 0), and one weight per corpus domain (a mixture group whose components are the
domain names, default ``code``/``math``/``prose``) for the training mixture.
Fixed arguments read from ``config["args"]``: ``n_layers`` (2), ``n_heads`` (4), ``seq_len`` (32),
``batch_size`` (16), ``vocab`` (32), ``base_width`` (32), ``warmup_steps`` (10), ``domains`` (names or
``{name: concentration}``), ``eval_mixture`` (``{domain: weight}``, default uniform), ``corpus_seed`` (0),
``eval_batches`` (4). The width comes from the model size (``size_extra["width"]``, ``args["widths"]``
or the parameter count).
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch.nn import functional as F

from workers.workloads.base import Reporter, WorkloadConfig
from workers.workloads.corpus import MarkovCorpus
from workers.workloads.parametrization import Parametrization, WidthScaling
from workers.workloads.transformer import TransformerLM

_DEFAULT_ARGS: dict[str, Any] = {"n_layers": 2, "n_heads": 4, "seq_len": 32, "batch_size": 16, "vocab": 32,
                                 "base_width": 32, "warmup_steps": 10, "corpus_seed": 0, "eval_batches": 4}


def _args(cfg: WorkloadConfig) -> dict[str, Any]:
    return {**_DEFAULT_ARGS, **dict(cfg.args)}


def _step_rng(seed: int, step: int) -> np.random.Generator:
    return np.random.default_rng([seed, step])


def build_model(cfg: WorkloadConfig, parametrization: Parametrization) -> tuple[TransformerLM, MarkovCorpus]:
    """The model and corpus a config describes (deterministic in ``cfg.seed``)."""
    a = _args(cfg)
    width = cfg.width(default_depth=int(a["n_layers"]), multiple=int(a["n_heads"]))
    corpus = MarkovCorpus(vocab=int(a["vocab"]), domains=a.get("domains"), seed=int(a["corpus_seed"]))
    torch.manual_seed(cfg.seed)
    p = cfg.params
    model = TransformerLM(WidthScaling(parametrization, width, int(a["base_width"])), vocab=corpus.vocab,
                          seq_len=int(a["seq_len"]), n_layers=int(a["n_layers"]), n_heads=int(a["n_heads"]),
                          init_scale=float(p.get("init_scale", 1.0)), output_mult=float(p.get("output_mult", 1.0)),
                          attn_mult=float(p.get("attn_mult", 1.0)))
    return model, corpus


def _loss(model: TransformerLM, batch: torch.Tensor) -> torch.Tensor:
    logits = model(batch[:, :-1])
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))


def _sequence_losses(model: TransformerLM, batch: torch.Tensor) -> torch.Tensor:
    """Mean next-token loss of each sequence (``batch``); their mean is :func:`_loss` (equal lengths)."""
    logits = model(batch[:, :-1])
    per_token = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1), reduction="none")
    return per_token.view(batch.shape[0], -1).mean(dim=1)


def domain_losses(seq_losses: torch.Tensor, domains: np.ndarray, names: Sequence[str]) -> dict[str, float]:
    """Mean loss per domain over the sequences of each (NaN for a domain with none in the batch)."""
    out = {}
    for k, name in enumerate(names):
        mask = torch.from_numpy(domains == k)
        out[name] = float(seq_losses[mask].mean()) if bool(mask.any()) else float("nan")
    return out


def train_lm(config: Mapping[str, Any], reporter: Reporter, parametrization: Parametrization) -> None:
    """Train one segment (see the module docstring); report validation loss every ``report_every``."""
    cfg = WorkloadConfig.from_dict(config)
    a = _args(cfg)
    model, corpus = build_model(cfg, parametrization)
    lr = float(cfg.params.get("lr", 3e-3))
    opt = torch.optim.AdamW(model.param_groups(lr, float(cfg.params.get("weight_decay", 0.0))),
                           betas=(0.9, 0.98), eps=1e-8)
    if cfg.checkpoint is not None:
        model.load_state_dict(cfg.checkpoint["model"])
        opt.load_state_dict(cfg.checkpoint["optimizer"])
    current = cfg.current_params
    mixture = corpus.mixture_weights(current)
    adapted = {k: float(current[k]) for k in corpus.domains if k in current} or None
    eval_rng = np.random.default_rng([int(a["corpus_seed"]), 7919])
    eval_set, eval_domains = corpus.sample_labelled(eval_rng, int(a["batch_size"]) * int(a["eval_batches"]),
                                                    int(a["seq_len"]), corpus.mixture_weights(a.get("eval_mixture")))
    warmup = max(int(a["warmup_steps"]), 0)
    report_at = set(cfg.report_steps())
    for step in range(cfg.start_step + 1, cfg.steps + 1):
        factor = min(1.0, step / warmup) if warmup else 1.0
        for g in opt.param_groups:
            g["lr"] = lr * g["base_lr_scale"] * factor
        batch = corpus.sample(_step_rng(cfg.seed, step), int(a["batch_size"]), int(a["seq_len"]), mixture)
        loss = _loss(model, batch)
        if not torch.isfinite(loss):
            reporter(step, float("nan"))
            return
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step in report_at:
            model.eval()
            with torch.no_grad():
                seq = _sequence_losses(model, eval_set)
            model.train()
            value = float(seq.mean())
            if not math.isfinite(value):
                reporter(step, value)
                return
            state = {"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step}
            if adapted is not None:
                state["adapted"] = dict(adapted)  # in effect up to this step
            new = reporter(step, value, state, domains=domain_losses(seq, eval_domains, corpus.domains))
            if new:  # an adaptive study's answer: train on it from the next step on
                adapted = {k: float(v) for k, v in new.items()}
                mixture = corpus.mixture_weights(adapted)


def mup_transformer(config: Mapping[str, Any], reporter: Reporter) -> None:
    """Decoder-only transformer LM in muP: hyperparameters tuned at a small width transfer to wider ones."""
    train_lm(config, reporter, Parametrization.MUP)


def sp_transformer(config: Mapping[str, Any], reporter: Reporter) -> None:
    """The same transformer LM in the standard parametrization (the optimal LR drifts with width)."""
    train_lm(config, reporter, Parametrization.SP)


def coord_check(parametrization: Parametrization, widths: Sequence[int], steps: int = 4, lr: float = 1e-2,
                seed: int = 0, args: Mapping[str, Any] | None = None) -> dict[int, dict[str, float]]:
    """Mean absolute coordinate of every layer's output after ``steps`` Adam steps, per width.

    The ``mup`` package's coordinate check: under muP these stay roughly flat as width grows, under SP
    they grow with width (updates of size eta move every coordinate, and width of them add up).
    Returns ``{width: {layer: mean |x|}}`` measured on one fixed batch.
    """
    out: dict[int, dict[str, float]] = {}
    for width in widths:
        cfg = WorkloadConfig.from_dict({"params": {"lr": lr}, "size": str(width), "steps": max(steps, 1),
                                        "seed": seed, "size_extra": {"width": width}, "args": dict(args or {})})
        a = _args(cfg)
        model, corpus = build_model(cfg, parametrization)
        opt = torch.optim.AdamW(model.param_groups(lr), betas=(0.9, 0.98))
        for step in range(1, steps + 1):
            batch = corpus.sample(_step_rng(seed, step), int(a["batch_size"]), int(a["seq_len"]))
            loss = _loss(model, batch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        probe = corpus.sample(np.random.default_rng([seed, 104729]), int(a["batch_size"]), int(a["seq_len"]))
        with torch.no_grad():
            acts = model.activations(probe[:, :-1])
        out[width] = {name: float(x.abs().mean()) for name, x in acts.items()}
    return out
