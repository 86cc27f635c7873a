"""unipool.Client against a real local cluster: every call, zero-copy fills,
error mapping and bad input."""

import numpy as np
import pytest

import unipool


def test_put_get_roundtrip(client, key):
    client.put(key, b"hello pool")
    assert client.get(key) == b"hello pool"
    assert client.exists(key)


def test_values_of_every_buffer_kind(client, key):
    values = [b"bytes", bytearray(b"bytearray"), memoryview(b"memoryview"),
              np.arange(100, dtype=np.float32)]
    for i, value in enumerate(values):
        client.put(f"{key}/{i}", value)
        assert client.get(f"{key}/{i}") == bytes(memoryview(value).cast("B"))


def test_torch_tensor_through_numpy(client, key):
    torch = pytest.importorskip("torch")
    tensor = torch.randn(4, 64)
    client.put(key, tensor.numpy())
    out = torch.empty(4, 64)
    assert client.get_into(key, out.numpy()) == tensor.numel() * 4
    assert torch.equal(out, tensor)


def test_get_into_fills_the_arrays_own_memory(client, key):
    value = np.random.default_rng(1).integers(0, 255, 4096, dtype=np.uint8)
    client.put(key, value)
    target = np.zeros(8192, dtype=np.uint8)
    address = target.__array_interface__["data"][0]
    assert client.get_into(key, target) == 4096
    # The same memory, not a replaced buffer: the address is unchanged and
    # a view taken before the call sees the bytes.
    assert target.__array_interface__["data"][0] == address
    np.testing.assert_array_equal(target[:4096], value)
    assert not target[4096:].any()


def test_get_into_a_view_fills_the_base_array(client, key):
    client.put(key, b"\x07" * 16)
    base = np.zeros(64, dtype=np.uint8)
    assert client.get_into(key, base[16:32]) == 16
    assert base[16:32].tolist() == [7] * 16
    assert not base[:16].any() and not base[32:].any()


def test_batch_put_and_batch_get_into(client, key):
    keys = [f"{key}/{i}" for i in range(8)]
    values = [np.full(1000 + i, i, dtype=np.uint8) for i in range(8)]
    assert client.batch_put(keys, values) is None
    targets = [np.zeros(1000 + i, dtype=np.uint8) for i in range(8)]
    assert client.batch_get_into(keys, targets) == [1000 + i for i in range(8)]
    for value, target in zip(values, targets):
        np.testing.assert_array_equal(value, target)
    assert client.batch_exists(keys + [f"{key}/missing"]) == [True] * 8 + [False]


def test_batch_get_into_one_2d_target(client, key):
    keys = [f"{key}/{i}" for i in range(6)]
    pages = np.arange(6 * 4096, dtype=np.uint32).astype(np.uint8).reshape(6, 4096)
    client.batch_put(keys, list(pages))
    target = np.zeros((6, 4096), dtype=np.uint8)
    assert client.batch_get_into(keys, target) == [4096] * 6
    np.testing.assert_array_equal(target, pages)
    flat = bytearray(6 * 4096)
    assert client.get_prefix_into(keys, flat) == 6
    assert bytes(flat) == pages.tobytes()
    with pytest.raises(unipool.InvalidArgument, match="does not split into 6 equal pieces"):
        client.batch_get_into(keys, np.zeros(6 * 4096 + 1, dtype=np.uint8))
    with pytest.raises(unipool.InvalidArgument, match="read-only"):
        client.batch_get_into(keys, bytes(6 * 4096))


def test_batch_errors_returned_per_key(client, key):
    client.put(f"{key}/a", b"a")
    results = client.batch_get_into([f"{key}/a", f"{key}/b"], [bytearray(1), bytearray(1)],
                                    errors="return")
    assert results[0] == 1
    assert isinstance(results[1], unipool.NotFound)
    assert f"{key}/b" in str(results[1])
    with pytest.raises(unipool.NotFound, match=f"{key}/b"):
        client.batch_get_into([f"{key}/a", f"{key}/b"], [bytearray(1), bytearray(1)])
    put = client.batch_put([f"{key}/a", f"{key}/c"], [b"x", b"y"], errors="return")
    assert isinstance(put[0], unipool.AlreadyExists) and put[1] is None


def test_remove_stat_list(client, key):
    client.put(f"{key}/x", b"12345")
    client.put(f"{key}/y", b"1")
    info = client.stat(f"{key}/x")
    assert info["length"] == 5 and info["copies"][0]["node_up"]
    listed = client.list(f"{key}/")
    assert [e["key"] for e in listed] == [f"{key}/x", f"{key}/y"]
    assert listed[0]["length"] == 5
    assert [e["key"] for e in client.list(f"{key}/", limit=1)] == [f"{key}/x"]
    assert [e["key"] for e in client.list(f"{key}/", start_after=f"{key}/x")] == [f"{key}/y"]
    client.remove(f"{key}/x")
    assert not client.exists(f"{key}/x")
    with pytest.raises(unipool.NotFound):
        client.remove(f"{key}/x")


def test_pin_unpin(client, key):
    client.put(key, b"pinned")
    client.pin(key)
    assert client.list(key)[0]["pinned"]
    client.unpin(key)
    assert not client.list(key)[0]["pinned"]
    client.pin(f"{key}/", prefix=True)
    client.unpin(f"{key}/", prefix=True)
    with pytest.raises(unipool.NotFound):
        client.unpin(key)


def test_status_and_stats(client, key):
    client.put(key, b"x" * 1000)
    status = client.status()
    assert len(status["nodes"]) == 2
    assert all(node["up"] for node in status["nodes"])
    assert status["objects"] >= 1 and status["used"] >= 1000
    stats = client.stats()
    assert stats["puts"] >= 1 and stats["bytes_put"] >= 1000
    assert stats["transport"] in ("shm", "tcp", "rdma-rc", "rdma-uc")


def test_put_replace_and_replicas(client, key):
    client.put(key, b"one")
    with pytest.raises(unipool.AlreadyExists):
        client.put(key, b"two")
    client.put(key, b"two", replace=True, replicas=2)
    assert client.get(key) == b"two"
    copies = client.stat(key)["copies"]
    assert len({c["node_id"] for c in copies}) == 2


# ---------------------------------------------------------------- errors


def test_exception_hierarchy():
    assert issubclass(unipool.NotFound, KeyError)
    assert issubclass(unipool.Unavailable, ConnectionError)
    assert issubclass(unipool.InvalidArgument, ValueError)
    for cls in (unipool.NotFound, unipool.Unavailable, unipool.ResourceExhausted,
                unipool.DataLoss, unipool.InvalidArgument, unipool.AlreadyExists):
        assert issubclass(cls, unipool.Error)


def test_not_found_names_the_key(client, key):
    with pytest.raises(unipool.NotFound) as raised:
        client.get(key)
    assert key in str(raised.value)
    assert raised.value.code == "NOT_FOUND"
    with pytest.raises(KeyError):
        client.get_into(key, bytearray(8))


def test_unreachable_directory_is_unavailable():
    with pytest.raises(unipool.Unavailable, match="127.0.0.1:1"):
        unipool.Client("127.0.0.1:1", connect_timeout=1.0)
    with pytest.raises(ConnectionError):
        unipool.Client("127.0.0.1:1", connect_timeout=1.0)


def test_pool_full_is_resource_exhausted(cluster, key):
    with unipool.Client(cluster.directory) as c:
        with pytest.raises(unipool.ResourceExhausted):
            c.put(key, np.zeros(300 << 20, dtype=np.uint8))  # larger than any node


def test_unknown_option_is_type_error(cluster):
    with pytest.raises(TypeError, match="unknown option 'rdma_mode'"):
        unipool.Client(cluster.directory, rdma_mode="off")
    with pytest.raises(unipool.InvalidArgument, match="rdma"):
        unipool.Client(cluster.directory, rdma="fast")


# ---------------------------------------------------------------- bad input


def test_target_too_small(client, key):
    client.put(key, b"x" * 100)
    with pytest.raises(unipool.InvalidArgument, match="too small") as raised:
        client.get_into(key, bytearray(99))
    assert key in str(raised.value)
    with pytest.raises(ValueError):
        client.batch_get_into([key], [bytearray(10)])


def test_non_contiguous_target(client, key):
    client.put(key, b"x" * 8)
    strided = np.zeros(16, dtype=np.uint8)[::2]
    with pytest.raises(unipool.InvalidArgument, match="not C-contiguous") as raised:
        client.get_into(key, strided)
    assert key in str(raised.value)
    with pytest.raises(unipool.InvalidArgument, match="not C-contiguous"):
        client.put(key + "/strided", strided)


def test_read_only_target(client, key):
    client.put(key, b"x")
    with pytest.raises(unipool.InvalidArgument, match="read-only"):
        client.get_into(key, b"\0")


def test_non_buffer_values(client, key):
    with pytest.raises(TypeError, match="buffer protocol.*not int"):
        client.put(key, 42)
    with pytest.raises(TypeError, match="buffer protocol.*not str"):
        client.put(key, "text is not bytes")
    with pytest.raises(TypeError, match="buffer protocol.*not list"):
        client.batch_put([key], [[1, 2, 3]])
    with pytest.raises(TypeError, match="buffer protocol"):
        client.get_into(key, None)


def test_batch_length_mismatch(client, key):
    with pytest.raises(unipool.InvalidArgument, match="2 keys but 1 values"):
        client.batch_put([key, key + "2"], [b"a"])
    with pytest.raises(unipool.InvalidArgument, match="1 keys but 2 targets"):
        client.batch_get_into([key], [bytearray(1), bytearray(1)])


def test_bad_errors_mode(client, key):
    with pytest.raises(unipool.InvalidArgument, match="errors must be"):
        client.batch_get_into([key], [bytearray(1)], errors="ignore")


def test_keys_over_1_kib(client):
    long_key = "k" * 1025
    with pytest.raises(unipool.InvalidArgument, match="over the limit"):
        client.put(long_key, b"x")
    with pytest.raises(ValueError):
        client.get(long_key)
    client.put("k" * 1024, b"fits")
    assert client.get("k" * 1024) == b"fits"


def test_empty_key_and_value(client, key):
    with pytest.raises(unipool.InvalidArgument):
        client.put("", b"x")
    with pytest.raises(unipool.InvalidArgument):
        client.put(key, b"")


def test_closed_client(cluster, key):
    c = unipool.Client(cluster.directory)
    c.close()
    assert c.closed
    with pytest.raises(unipool.FailedPrecondition, match="closed"):
        c.put(key, b"x")
    with pytest.raises(unipool.FailedPrecondition, match="closed"):
        c.get(key)
    with unipool.Client(cluster.directory) as c2:
        pass
    assert c2.closed
    with pytest.raises(unipool.Error):
        c2.exists(key)


# ---------------------------------------------------------------- prefixes


def test_lookup_prefix_and_get_prefix_into(client, key):
    keys = [f"{key}/block{i}" for i in range(10)]
    client.batch_put(keys[:6], [np.full(4096, i, dtype=np.uint8) for i in range(6)])
    assert client.lookup_prefix(keys) == 6
    assert client.lookup_prefix(keys[6:]) == 0
    assert client.lookup_prefix([]) == 0
    targets = np.zeros((10, 4096), dtype=np.uint8)
    before = client.stats()["directory_requests"]
    assert client.get_prefix_into(keys, targets) == 6
    assert client.stats()["directory_requests"] - before == 1  # one round trip
    assert [int(t[0]) for t in targets] == [0, 1, 2, 3, 4, 5, 0, 0, 0, 0]
    client.remove(keys[3])
    assert client.get_prefix_into(keys, targets) == 3


def test_get_prefix_into_bad_input(client, key):
    client.put(key, b"x" * 64)
    with pytest.raises(unipool.InvalidArgument, match="too small"):
        client.get_prefix_into([key], [bytearray(8)])
    with pytest.raises(unipool.InvalidArgument, match="2 keys but 1 targets"):
        client.get_prefix_into([key, key + "/2"], [bytearray(64)])
    with pytest.raises(unipool.InvalidArgument, match="over the limit"):
        client.lookup_prefix(["k" * 1025])
