"""A pool with a cluster key: the Python client proves the key or a token from key_file."""

import os
import subprocess

import pytest

import unipool
from cluster import LocalCluster, bin_dir


def unipoolctl(*args):
    return subprocess.run([os.path.join(bin_dir(), "unipoolctl"), *args], check=True,
                          capture_output=True, text=True).stdout


def write_private(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keys")
    cluster_key = str(folder / "cluster.key")
    unipoolctl("keygen", cluster_key)
    token = unipoolctl("--key-file=" + cluster_key, "token", "create", "--role", "client",
                       "--prefix", "tenant-a/")
    return cluster_key, write_private(str(folder / "tenant-a.token"), token)


@pytest.fixture(scope="module")
def keyed_cluster(keys):
    with LocalCluster(nodes=1, key_file=keys[0]) as running:
        yield running


def test_the_cluster_key_opens_the_pool(keyed_cluster, keys):
    with unipool.Client(keyed_cluster.directory, key_file=keys[0]) as c:
        c.put("any/key", b"bytes")
        assert c.get("any/key") == b"bytes"


def test_no_key_is_unauthenticated(keyed_cluster, monkeypatch):
    monkeypatch.delenv("UNIPOOL_KEY_FILE", raising=False)
    with pytest.raises(unipool.Unauthenticated):
        unipool.Client(keyed_cluster.directory, directory_retry=0.5)


def test_a_token_is_confined_to_its_prefix(keyed_cluster, keys):
    with unipool.Client(keyed_cluster.directory, key_file=keys[1]) as c:
        c.put("tenant-a/page", b"mine")
        assert c.get("tenant-a/page") == b"mine"
        with pytest.raises(unipool.PermissionDenied, match="tenant-b/page"):
            c.put("tenant-b/page", b"theirs")
        assert issubclass(unipool.PermissionDenied, PermissionError)


def test_an_unreadable_key_file_is_refused(keyed_cluster, tmp_path):
    with pytest.raises(unipool.Error):
        unipool.Client(keyed_cluster.directory, key_file=str(tmp_path / "missing.key"))


def test_tls_ca_opens_a_pool_that_speaks_tls(tmp_path, monkeypatch):
    monkeypatch.delenv("UNIPOOL_TLS_CA", raising=False)
    tls = str(tmp_path / "tls")
    unipoolctl("tls", "init", tls, "--hosts", "127.0.0.1,localhost")
    with LocalCluster(nodes=1, tls_dir=tls) as running:
        with unipool.Client(running.directory, tls_ca=os.path.join(tls, "ca.pem")) as c:
            c.put("over/tls", b"sealed")
            assert c.get("over/tls") == b"sealed"
        # Plain frames to a TLS-only port: refused, saying what to give.
        with pytest.raises(unipool.Error, match="speaks only TLS"):
            unipool.Client(running.directory, directory_retry=0.5)
