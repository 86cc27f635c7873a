"""pytest fixtures: one real local cluster per test module, and a client of it."""

import itertools

import pytest

import unipool
from cluster import LocalCluster

_keys = itertools.count()


@pytest.fixture(scope="module")
def cluster():
    with LocalCluster(nodes=2) as running:
        yield running


@pytest.fixture
def client(cluster):
    with unipool.Client(cluster.directory, name="pytest") as c:
        yield c


@pytest.fixture
def key(request):
    """A key no other test uses."""
    return f"{request.node.name}/{next(_keys)}"
