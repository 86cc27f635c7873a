"""A small decoder-only transformer with a real attention KV cache (torch, CPU).

Random weights from a seed, so two processes build the same model. Four
layers, eight heads, width 512 by default: big enough that a prefill costs
real time, small enough for a test. The cache of layer l holds K and V as
[heads, tokens, head_dim]; `forward(tokens, cache)` appends the new tokens'
K and V and attends over everything cached, so a suffix after a cached prefix
costs only the suffix.
"""

import math

import torch
from torch import nn


class Layer(nn.Module):
    def __init__(self, width, heads):
        super().__init__()
        self.heads = heads
        self.head_dim = width // heads
        self.norm1 = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))

    def forward(self, x, cache):
        """x: [tokens, width]; cache: (K, V) of the earlier tokens or None.
        Returns (x, (K, V)) with the new tokens appended to the cache."""
        n = x.shape[0]
        q, k, v = self.qkv(self.norm1(x)).split(x.shape[1], dim=1)
        q, k, v = (t.view(n, self.heads, self.head_dim).transpose(0, 1) for t in (q, k, v))
        if cache is not None:
            k = torch.cat([cache[0], k], dim=1)
            v = torch.cat([cache[1], v], dim=1)
        past = k.shape[1] - n
        scores = q @ k.transpose(1, 2) / math.sqrt(self.head_dim)
        # Causal: new token i (position past + i) sees positions <= past + i.
        mask = torch.ones(n, k.shape[1], dtype=torch.bool).triu(past + 1)
        scores = scores.masked_fill(mask, float("-inf"))
        attended = (scores.softmax(dim=-1) @ v).transpose(0, 1).reshape(n, -1)
        x = x + self.out(attended)
        x = x + self.mlp(self.norm2(x))
        return x, (k, v)


class TinyDecoder(nn.Module):
    def __init__(self, seed=0, vocab=4096, width=512, heads=8, layers=4, max_tokens=4096):
        super().__init__()
        torch.manual_seed(seed)
        self.embed = nn.Embedding(vocab, width)
        self.position = nn.Embedding(max_tokens, width)
        self.layers = nn.ModuleList(Layer(width, heads) for _ in range(layers))
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, vocab, bias=False)
        self.eval()

    @torch.no_grad()
    def forward(self, tokens, cache=None):
        """Logits for `tokens` (after the cached ones) and the grown cache
        (a list of per-layer (K, V))."""
        past = 0 if cache is None else cache[0][0].shape[1]
        positions = torch.arange(past, past + len(tokens))
        x = self.embed(torch.as_tensor(tokens)) + self.position(positions)
        grown = []
        for i, layer in enumerate(self.layers):
            x, layer_cache = layer(x, None if cache is None else cache[i])
            grown.append(layer_cache)
        return self.head(self.norm(x)), grown
