"""The *_async calls: results, errors, and two batches in flight at once."""

import os
import signal
import time

import numpy as np
import pytest

import unipool
from cluster import LocalCluster


def test_batch_get_into_async(client, key):
    keys = [f"{key}/{i}" for i in range(4)]
    client.batch_put(keys, [np.full(4096, i, dtype=np.uint8) for i in range(4)])
    targets = [np.zeros(4096, dtype=np.uint8) for _ in keys]
    pending = client.batch_get_into_async(keys, targets)
    assert pending.wait() == [4096] * 4
    assert pending.done()
    assert [int(t[0]) for t in targets] == [0, 1, 2, 3]


def test_batch_put_async_and_errors(client, key):
    pending = client.batch_put_async([f"{key}/a", f"{key}/b"], [b"a", b"b"])
    assert pending.wait() is None
    assert client.get(f"{key}/b") == b"b"
    again = client.batch_put_async([f"{key}/a", f"{key}/c"], [b"a", b"c"], errors="return")
    results = again.wait()
    assert isinstance(results[0], unipool.AlreadyExists) and results[1] is None
    missing = client.batch_get_into_async([f"{key}/nope"], [bytearray(1)])
    with pytest.raises(unipool.NotFound, match=f"{key}/nope"):
        missing.wait()


def test_get_prefix_into_async(client, key):
    keys = [f"{key}/{i}" for i in range(6)]
    client.batch_put(keys[:4], [bytes([i]) * 100 for i in range(4)])
    targets = [bytearray(100) for _ in keys]
    assert client.get_prefix_into_async(keys, targets).wait() == 4
    assert [t[0] for t in targets[:4]] == [0, 1, 2, 3]


def test_async_bad_input_raises_at_once(client, key):
    with pytest.raises(TypeError, match="buffer protocol"):
        client.batch_get_into_async([key], [3])
    with pytest.raises(unipool.InvalidArgument, match="1 keys but 2 targets"):
        client.batch_get_into_async([key], [bytearray(1), bytearray(1)])


def test_two_batches_in_flight_from_one_thread():
    """Batch A reads from a node that is stopped (SIGSTOP), so it cannot
    finish; batch B, started after A from the same thread, reads from the
    other node and completes while A is still in flight. Then the node is
    resumed and A completes too. No timing: the order of events is forced."""
    with LocalCluster(nodes=2) as cluster:
        # TCP: on the same host, shared memory would read a stopped node's slab.
        with unipool.Client(cluster.directory, shm=False, io_timeout=60) as c:
            keys = [f"inflight/{i}" for i in range(8)]
            c.batch_put(keys, [np.full(65536, i, dtype=np.uint8) for i in range(8)])
            by_node = {}
            for k in keys:
                by_node.setdefault(c.stat(k)["copies"][0]["node_address"], []).append(k)
            assert len(by_node) == 2, by_node  # placement spread the keys
            (stopped_address, stopped_keys), (_, live_keys) = sorted(by_node.items())
            pid = pid_of_node(cluster, c, stopped_address)
            events = []
            stop(pid)
            try:
                a_targets = [np.zeros(65536, dtype=np.uint8) for _ in stopped_keys]
                b_targets = [np.zeros(65536, dtype=np.uint8) for _ in live_keys]
                a = c.batch_get_into_async(stopped_keys, a_targets)
                events.append("a started")
                b = c.batch_get_into_async(live_keys, b_targets)
                events.append("b started")
                b.wait()
                events.append("b done")
                assert not a.done()
                events.append("a still in flight")
            finally:
                os.kill(pid, signal.SIGCONT)
            assert a.wait() == [65536] * len(stopped_keys)
            events.append("a done")
            assert events == ["a started", "b started", "b done", "a still in flight", "a done"]
            for k, t in zip(stopped_keys + live_keys, a_targets + b_targets):
                assert int(t[0]) == int(k.split("/")[1])


def stop(pid):
    """SIGSTOP, then wait until every thread of the process has stopped (the
    signal is delivered asynchronously)."""
    os.kill(pid, signal.SIGSTOP)
    while True:
        states = []
        for task in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{task}/stat") as f:
                    states.append(f.read().rsplit(")", 1)[1].split()[0])
            except OSError:
                continue
        if states and all(state in "tT" for state in states):
            return
        time.sleep(0.001)


def pid_of_node(cluster, client, address):
    """The pid of the node serving `address` (its listening port's owner)."""
    port = address.rsplit(":", 1)[1]
    for pid in cluster.node_pids():
        if listens_on(pid, int(port)):
            return pid
    raise AssertionError(f"no node process listens on {address}")


def listens_on(pid, port):
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and int(local.split(":")[1], 16) == port and inode in inodes:
                return True
    return False
