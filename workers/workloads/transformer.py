"""A small decoder-only (GPT-style, pre-LayerNorm) transformer whose width scaling follows a
:class:`~workers.workloads.parametrization.WidthScaling` (muP or SP).

Shapes: tokens ``batch x seq``; hidden states ``batch x seq x width``; logits ``batch x seq x vocab``.
The number of heads is fixed, so the head dimension grows with width and the attention scaling matters.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from workers.workloads.parametrization import ParamClass, WidthScaling


class CausalSelfAttention(nn.Module):
    def __init__(self, width: int, n_heads: int, scale: float) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.qkv = nn.Linear(width, 3 * width, bias=False)
        self.proj = nn.Linear(width, width, bias=False)
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, w = x.shape
        q, k, v = self.qkv(x).split(w, dim=-1)
        q, k, v = (z.view(b, t, self.n_heads, w // self.n_heads).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=self.scale)
        return self.proj(y.transpose(1, 2).reshape(b, t, w))


class Block(nn.Module):
    def __init__(self, width: int, n_heads: int, attn_scale: float) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(width)
        self.attn = CausalSelfAttention(width, n_heads, attn_scale)
        self.ln2 = nn.LayerNorm(width)
        self.fc = nn.Linear(width, 4 * width, bias=False)
        self.out = nn.Linear(4 * width, width, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.out(F.gelu(self.fc(self.ln2(x))))


class TransformerLM(nn.Module):
    """Decoder-only LM. ``forward(tokens)`` -> logits; ``activations(tokens)`` -> per-layer hidden states."""

    def __init__(self, scaling: WidthScaling, vocab: int, seq_len: int, n_layers: int = 2, n_heads: int = 4,
                 init_scale: float = 1.0, output_mult: float = 1.0, attn_mult: float = 1.0) -> None:
        super().__init__()
        width = scaling.width
        if width % n_heads or scaling.base_width % n_heads:
            raise ValueError(f"width {width} and base width {scaling.base_width} must divide by {n_heads} heads")
        self.scaling = scaling
        self.tok = nn.Embedding(vocab, width)
        self.pos = nn.Embedding(seq_len, width)
        attn_scale = attn_mult * scaling.attention_scale(width // n_heads, scaling.base_width // n_heads)
        self.blocks = nn.ModuleList(Block(width, n_heads, attn_scale) for _ in range(n_layers))
        self.ln_f = nn.LayerNorm(width)
        self.readout = nn.Linear(width, vocab, bias=False)
        self.output_mult = output_mult * scaling.output_multiplier()
        self._init(init_scale)

    def param_class(self, name: str, p: torch.Tensor) -> ParamClass:
        if name.startswith(("tok.", "pos.")):
            return ParamClass.INPUT
        if name.startswith("readout."):
            return ParamClass.OUTPUT
        return ParamClass.HIDDEN if p.ndim == 2 else ParamClass.VECTOR

    @torch.no_grad()
    def _init(self, sigma: float) -> None:
        for name, p in self.named_parameters():
            kind = self.param_class(name, p)
            if kind is ParamClass.VECTOR:
                continue  # LayerNorm keeps gain 1, bias 0
            fan_in = p.shape[1] if kind is not ParamClass.INPUT else 1
            p.normal_(0.0, self.scaling.init_std(kind, fan_in, sigma))

    def param_groups(self, lr: float, weight_decay: float = 0.0) -> list[dict[str, Any]]:
        """Adam parameter groups with the parametrization's per-class learning rates. Decoupled weight
        decay is scaled with the LR, as ``mup.MuAdamW`` does, so ``lr * wd`` stays width-independent."""
        groups: dict[ParamClass, list[torch.Tensor]] = {}
        for name, p in self.named_parameters():
            groups.setdefault(self.param_class(name, p), []).append(p)
        out = []
        for kind, ps in groups.items():
            scale = self.scaling.lr_scale(kind)
            out.append({"params": ps, "lr": lr * scale, "base_lr_scale": scale,
                        "weight_decay": weight_decay / scale if kind is not ParamClass.VECTOR else 0.0})
        return out

    def activations(self, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
        """Hidden states by layer name (``embed``, ``block0``..., ``logits``) for coordinate checks."""
        t = tokens.shape[1]
        x = self.tok(tokens) + self.pos(torch.arange(t, device=tokens.device))
        acts = {"embed": x}
        for i, block in enumerate(self.blocks):
            x = block(x)
            acts[f"block{i}"] = x
        acts["logits"] = self.readout(self.ln_f(x)) * self.output_mult
        return acts

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.activations(tokens)["logits"]
