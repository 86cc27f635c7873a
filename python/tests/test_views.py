"""Zero-copy views (Client.get_view, get_prefix_views) with a real cluster on
this machine: the right bytes, read-only as memoryview and numpy array,
unchanged after their key is removed, and given back when the last reference
goes."""

import gc
import time

import numpy as np
import pytest

import unipool


def wait_for(condition, timeout=60.0):
    """Polls `condition` until it holds; False when `timeout` passes first."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_view_bytes_are_read_only(client, key):
    data = np.random.default_rng(7).integers(0, 256, 256 << 10, dtype=np.uint8)
    client.put(key, data)
    view = client.get_view(key)
    assert view.key == key
    assert view.nbytes == data.nbytes == len(view)
    assert not view.stale and not view.detached
    array = np.frombuffer(view, dtype=np.uint8)
    np.testing.assert_array_equal(array, data)
    assert not array.flags.writeable
    with pytest.raises(ValueError):
        array[0] = 1
    window = memoryview(view)
    assert window.readonly
    with pytest.raises(TypeError):
        window[0] = 1
    assert bytes(window[:16]) == data[:16].tobytes()
    assert client.view_bytes() == data.nbytes
    with pytest.raises(unipool.NotFound):
        client.get_view(key + "/absent")


def test_view_survives_remove_and_is_released_with_its_last_reference(client, key):
    values = np.random.default_rng(8).standard_normal(64 << 10).astype(np.float16)
    client.put(key, values)
    before = client.view_bytes()
    view = client.get_view(key)
    array = np.frombuffer(view, dtype=np.float16)
    assert client.view_bytes() == before + values.nbytes
    client.remove(key)
    # The client renews a view's lease every third of it; the renewal that
    # finds the key gone moves the bytes into private memory.
    assert wait_for(lambda: view.detached), "the view of a removed key never detached"
    for i in range(8):  # new puts may take the removed page's memory
        client.put(f"{key}/filler/{i}", np.full(1 << 20, i, dtype=np.uint8))
    np.testing.assert_array_equal(array, values)
    del view
    gc.collect()
    assert client.view_bytes() == before + values.nbytes  # the array still holds it
    np.testing.assert_array_equal(array, values)
    del array
    gc.collect()
    assert client.view_bytes() == before


def test_views_are_bounded_by_max_view_bytes(cluster, key):
    with unipool.Client(cluster.directory, name="pytest-bound", max_view_bytes=1 << 20) as small:
        small.put(key, np.zeros(768 << 10, dtype=np.uint8))
        held = small.get_view(key)
        with pytest.raises(unipool.ResourceExhausted):
            small.get_view(key)  # 1.5 MiB would pass the bound
        del held
        gc.collect()
        assert len(small.get_view(key)) == 768 << 10  # released: room again


def test_prefix_views_in_order(client, key):
    pages = [np.full(64 << 10, i, dtype=np.uint8) for i in range(4)]
    keys = [f"{key}/{i}" for i in range(4)]
    client.batch_put(keys[:3], pages[:3])
    views = client.get_prefix_views(keys)
    assert [v.key for v in views] == keys[:3]  # the prefix ends at the absent key
    for view, page in zip(views, pages):
        np.testing.assert_array_equal(np.frombuffer(view, dtype=np.uint8), page)
    assert client.get_prefix_views([key + "/absent"] + keys) == []
