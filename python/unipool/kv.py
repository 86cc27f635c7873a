"""A model's KV cache in the pool, found by token prefix.

The cache is cut into blocks of ``block_size`` tokens, as vLLM's automatic
prefix caching does: block i's hash is a hash of block i-1's hash, the
block's token ids and ``extra`` (e.g. a model or LoRA id), so a block's key
names the whole prefix that ends with it and two requests share the keys of
their common leading blocks. Only full blocks are stored.

A block is stored either as one page (``layers=1``: all layers of the block
in one buffer, the shape of LMCache's chunks) or as one page per layer
(``layers=L``: the shape of a paged KV cache, where layer pages can be read
while earlier layers compute). Pages are any C-contiguous buffers; reads go
straight into the caller's memory (e.g. ``torch_cache[layer][block].numpy()``).

    cache = unipool.kv.KVCache(client, namespace="llama3-8b", block_size=16, layers=32)
    cache.store(tokens, pages)        # pages[block][layer]
    hit = cache.retrieve(tokens, out) # tokens whose KV is now in out[block][layer]
"""

import hashlib
import struct
from typing import Any, List, Sequence

from unipool.errors import AlreadyExists

# Token ids are hashed as little-endian 64-bit integers.
_TOKEN = struct.Struct("<q")


def block_hashes(tokens: Sequence[int], block_size: int, extra: bytes = b"") -> List[str]:
    """The chained hash (hex) of each full block of ``tokens``."""
    if block_size < 1:
        raise ValueError(f"block_size must be at least 1, not {block_size}")
    hashes = []
    parent = b""
    full = len(tokens) - len(tokens) % block_size
    for start in range(0, full, block_size):
        h = hashlib.blake2b(digest_size=16)
        h.update(parent)
        h.update(b"".join(_TOKEN.pack(int(t)) for t in tokens[start:start + block_size]))
        h.update(extra)
        parent = h.digest()
        hashes.append(h.hexdigest())
    return hashes


class KVCache:
    """Stores and finds KV pages by token prefix through a unipool.Client."""

    def __init__(self, client, *, namespace: str = "kv", block_size: int = 16, layers: int = 1,
                 extra: bytes = b""):
        if layers < 1:
            raise ValueError(f"layers must be at least 1, not {layers}")
        self.client = client
        self.namespace = namespace
        self.block_size = block_size
        self.layers = layers
        self.extra = extra
        block_hashes([], block_size)  # checks block_size

    def blocks(self, tokens: Sequence[int]) -> int:
        """How many full blocks ``tokens`` has."""
        return len(tokens) // self.block_size

    def block_keys(self, tokens: Sequence[int]) -> List[List[str]]:
        """keys[block][layer]: the key of each page of each full block."""
        hashes = block_hashes(tokens, self.block_size, self.extra)
        if self.layers == 1:
            return [[f"{self.namespace}/{h}"] for h in hashes]
        return [[f"{self.namespace}/{h}/{layer}" for layer in range(self.layers)] for h in hashes]

    def _pages(self, pages: Any, blocks: int, what: str) -> List[Any]:
        """pages[block] (layers=1) or pages[block][layer], flattened block-major."""
        if len(pages) < blocks:
            raise ValueError(f"{what}: {blocks} full blocks of tokens but {len(pages)} pages")
        if self.layers == 1:
            return [pages[b] for b in range(blocks)]
        flat = []
        for b in range(blocks):
            if len(pages[b]) != self.layers:
                raise ValueError(f"{what}: block {b} has {len(pages[b])} layer pages, "
                                 f"not {self.layers}")
            flat.extend(pages[b][layer] for layer in range(self.layers))
        return flat

    def store(self, tokens: Sequence[int], pages: Any) -> int:
        """Stores the pages of every full block of ``tokens``; returns how many
        blocks were new (a block already in the pool has the same content: its
        key names the whole prefix)."""
        keys = self.block_keys(tokens)
        flat_keys = [k for block in keys for k in block]
        results = self.client.batch_put(flat_keys, self._pages(pages, len(keys), "store"),
                                        errors="return")
        for result in results:
            if result is not None and not isinstance(result, AlreadyExists):
                raise result
        new = [all(r is None for r in results[b * self.layers:(b + 1) * self.layers])
               for b in range(len(keys))]
        return sum(new)

    def lookup(self, tokens: Sequence[int]) -> int:
        """How many leading tokens have every page in the pool (one directory
        round trip; the pages are leased for the get that follows)."""
        flat_keys = [k for block in self.block_keys(tokens) for k in block]
        return self.client.lookup_prefix(flat_keys) // self.layers * self.block_size

    def retrieve(self, tokens: Sequence[int], out: Any) -> int:
        """Reads the longest stored prefix of ``tokens`` into ``out`` (laid out
        as the pages of store) and returns how many tokens it covers."""
        keys = self.block_keys(tokens)
        flat_keys = [k for block in keys for k in block]
        read = self.client.get_prefix_into(flat_keys, self._pages(out, len(keys), "retrieve"))
        return read // self.layers * self.block_size

    def retrieve_layer_async(self, tokens: Sequence[int], layer: int, out: Sequence[Any]):
        """Starts reading layer ``layer`` of the first len(out) blocks of
        ``tokens`` into out[block] (after lookup said they are there) and
        returns the handle: read layer i+1 while layer i computes."""
        keys = [block[layer] for block in self.block_keys(tokens)[:len(out)]]
        return self.client.batch_get_into_async(keys, list(out))
