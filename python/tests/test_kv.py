"""unipool.kv: chained block hashes, store / lookup / retrieve by prefix."""

import numpy as np
import pytest

import unipool
from unipool.kv import KVCache, block_hashes


def test_block_hashes_chain_the_prefix():
    a = block_hashes(list(range(40)), 16)
    assert len(a) == 2  # only full blocks
    b = block_hashes(list(range(32)) + [99] * 16, 16)
    assert b[:2] == a  # same leading blocks, same keys
    assert len(b) == 3
    c = block_hashes([5] + list(range(1, 32)), 16)
    assert c[0] != a[0] and c[1] != a[1]  # a change in block 0 changes every later key
    assert block_hashes(list(range(32)), 16, extra=b"lora-1") != a
    assert block_hashes(list(range(32)), 8) != a
    with pytest.raises(ValueError):
        block_hashes([1], 0)


def test_whole_block_pages(client, key):
    cache = KVCache(client, namespace=key, block_size=4)
    tokens = list(range(10))  # two full blocks and two tokens
    pages = np.arange(2 * 32, dtype=np.float32).reshape(2, 32)
    assert cache.store(tokens, pages) == 2
    assert cache.store(tokens, pages) == 0  # already there
    assert cache.lookup(tokens + [7, 7]) == 8
    longer = tokens[:8] + [50, 51, 52, 53]
    out = np.zeros((3, 32), dtype=np.float32)
    assert cache.retrieve(longer, out) == 8
    np.testing.assert_array_equal(out[:2], pages)
    assert not out[2].any()
    assert cache.retrieve([9] + tokens[1:], np.zeros((2, 32), dtype=np.float32)) == 0


def test_per_layer_pages(client, key):
    layers = 3
    cache = KVCache(client, namespace=key, block_size=2, layers=layers)
    tokens = [1, 2, 3, 4, 5, 6]
    kv = np.random.default_rng(0).standard_normal((3, layers, 2, 8)).astype(np.float32)
    assert cache.store(tokens, kv) == 3
    out = np.zeros_like(kv)
    assert cache.retrieve(tokens, out) == 6
    np.testing.assert_array_equal(out, kv)
    # A block missing one layer page ends the prefix before it.
    client.remove(cache.block_keys(tokens)[1][2])
    assert cache.lookup(tokens) == 2
    out[:] = 0
    assert cache.retrieve(tokens, out) == 2
    np.testing.assert_array_equal(out[0], kv[0])


def test_layer_by_layer_async(client, key):
    layers = 4
    cache = KVCache(client, namespace=key, block_size=2, layers=layers)
    tokens = list(range(8))
    kv = np.random.default_rng(1).standard_normal((4, layers, 16)).astype(np.float32)
    cache.store(tokens, kv)
    hit = cache.lookup(tokens)
    assert hit == 8
    by_layer = np.zeros((layers, 4, 16), dtype=np.float32)  # a paged cache: [layer][block]
    pending = [cache.retrieve_layer_async(tokens, layer, by_layer[layer])
               for layer in range(layers)]
    for layer, p in enumerate(pending):
        assert p.wait() == [64] * 4
        np.testing.assert_array_equal(by_layer[layer], kv[:, layer])


def test_bad_pages(client, key):
    cache = KVCache(client, namespace=key, block_size=2, layers=2)
    with pytest.raises(ValueError, match="2 full blocks of tokens but 1 pages"):
        cache.store([1, 2, 3, 4], np.zeros((1, 2, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="block 0 has 3 layer pages"):
        cache.store([1, 2], np.zeros((1, 3, 4), dtype=np.float32))
    with pytest.raises(ValueError):
        KVCache(client, layers=0)
