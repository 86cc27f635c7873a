"""A prompt's KV cache computed once and reused by another process.

    kv_reuse.py prefill --directory HOST:PORT   # process A: prefill, store the KV blocks
    kv_reuse.py reuse   --directory HOST:PORT   # process B: prompt + a new suffix

A prefills the prompt with tiny_decoder.TinyDecoder and stores each 16-token
block's K and V, one page per layer, through unipool.kv. B builds the same
model (same seed), asks the pool for the longest cached prefix of prompt +
suffix, reads it straight into its own cache tensors, computes only the
suffix, and compares its logits with a full recompute. B prints one JSON line
(tokens hit and computed, the largest logit difference, both timings) and
exits 1 if the logits differ by more than the tolerance.

Tolerance: float32, atol = rtol = 1e-4. The cached K and V are bit-identical
to what A computed, but B's suffix attends through matmuls of a different
shape (64 query rows instead of 576), and BLAS may sum in a different order
for another shape, so the same math can differ in the last bits (float32
epsilon is 1.2e-7; four layers of sums over 512..2048 terms stay far below
1e-4). Wrong or shifted KV moves the logits by ~1e-1 and more.
"""

import argparse
import json
import sys
import time

import numpy as np
import torch

import unipool
import unipool.kv
from tiny_decoder import TinyDecoder

BLOCK = 16
TOLERANCE = 1e-4


def prompt_tokens(args):
    return torch.randint(0, 4096, (args.prompt,), generator=torch.Generator().manual_seed(7))


def suffix_tokens(args):
    return torch.randint(0, 4096, (args.suffix,), generator=torch.Generator().manual_seed(8))


def pages_of(cache, blocks):
    """pages[block][layer]: K and V of the block's tokens, [2, heads, BLOCK, head_dim]."""
    return [[torch.stack([k[:, b * BLOCK:(b + 1) * BLOCK], v[:, b * BLOCK:(b + 1) * BLOCK]])
             .contiguous().numpy() for k, v in cache] for b in range(blocks)]


def prefill(args, model, cache_store):
    tokens = prompt_tokens(args)
    _, cache = model(tokens)
    blocks = len(tokens) // BLOCK
    stored = cache_store.store(tokens.tolist(), pages_of(cache, blocks))
    print(json.dumps({"prefilled_tokens": len(tokens), "blocks": blocks, "new_blocks": stored}))
    return 0


def reuse(args, model, cache_store):
    tokens = torch.cat([prompt_tokens(args), suffix_tokens(args)])
    heads, head_dim = model.layers[0].heads, model.layers[0].head_dim
    layers = len(model.layers)
    blocks = len(tokens) // BLOCK
    # The cache B computes into: per layer, K and V as [2, heads, tokens, head_dim]
    # is what the model wants; the pool's pages are per block, so read each page
    # into its own buffer and join them (one copy, as a paged cache would not need).
    out = [[np.empty((2, heads, BLOCK, head_dim), dtype=np.float32) for _ in range(layers)]
           for _ in range(blocks)]

    started = time.perf_counter()
    hit = cache_store.retrieve(tokens.tolist(), out)
    cache = [(torch.cat([torch.from_numpy(out[b][l][0]) for b in range(hit // BLOCK)], dim=1),
              torch.cat([torch.from_numpy(out[b][l][1]) for b in range(hit // BLOCK)], dim=1))
             for l in range(layers)] if hit else None
    logits, _ = model(tokens[hit:], cache)
    reuse_seconds = time.perf_counter() - started

    started = time.perf_counter()
    full, _ = model(tokens)
    full_seconds = time.perf_counter() - started

    expected = full[hit:]
    difference = (logits - expected).abs().max().item()
    scrambled = None
    if hit:  # the same suffix over a wrong prefix: how far off a bad cache is
        wrong = [(torch.roll(k, 1, dims=1), v) for k, v in cache]
        scrambled = (model(tokens[hit:], wrong)[0] - expected).abs().max().item()
    ok = torch.allclose(logits, expected, atol=TOLERANCE, rtol=TOLERANCE)
    print(json.dumps({
        "tokens": len(tokens), "hit_tokens": hit, "computed_tokens": len(tokens) - hit,
        "max_logit_difference": difference, "tolerance": TOLERANCE,
        "wrong_cache_difference": scrambled, "allclose": ok,
        "reuse_seconds": reuse_seconds, "full_prefill_seconds": full_seconds}))
    print(f"prefix hit {hit} of {len(tokens)} tokens; computed {len(tokens) - hit}: "
          f"{reuse_seconds * 1e3:.1f} ms (pool read + suffix) vs {full_seconds * 1e3:.1f} ms "
          f"full prefill, {(full_seconds - reuse_seconds) * 1e3:.1f} ms saved", file=sys.stderr)
    return 0 if ok else 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", choices=["prefill", "reuse"])
    parser.add_argument("--directory", default="127.0.0.1:7300")
    parser.add_argument("--prompt", type=int, default=512, help="prompt tokens")
    parser.add_argument("--suffix", type=int, default=64, help="new tokens after the prompt")
    parser.add_argument("--namespace", default="tiny-decoder")
    args = parser.parse_args()
    torch.set_num_threads(1)  # the same kernels in both processes
    model = TinyDecoder(seed=1)
    with unipool.Client(args.directory) as client:
        cache_store = unipool.kv.KVCache(client, namespace=args.namespace, block_size=BLOCK,
                                         layers=len(model.layers))
        return (prefill if args.mode == "prefill" else reuse)(args, model, cache_store)


if __name__ == "__main__":
    sys.exit(main())
