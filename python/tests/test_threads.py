"""The GIL is released during transfers: two Python threads are inside
unipool calls at the same time.

With sys.setswitchinterval set very long, the interpreter never takes the GIL
from a running thread; a thread gives it up only when C code releases it. A
thread records an event right before each call and right after it. If the
calls held the GIL, the other thread could record nothing while a call runs,
and the two threads' (start, end) intervals could never overlap. So one
overlapping pair proves the calls ran at once (no durations involved)."""

import sys
import threading
import time

import numpy as np
import pytest

PAGE = 1 << 20
PAGES = 16
ROUNDS = 20


@pytest.fixture
def long_switch_interval():
    old = sys.getswitchinterval()
    sys.setswitchinterval(1000.0)
    yield
    sys.setswitchinterval(old)


def overlapping(a, b):
    return any(a0 < b1 and b0 < a1 for a0, a1 in a for b0, b1 in b)


def run_two_threads(work):
    events = {0: [], 1: []}
    errors = []
    barrier = threading.Barrier(2)

    def body(i):
        try:
            barrier.wait()  # blocks, releasing the GIL, so both threads get going
            for _ in range(ROUNDS):
                start = time.monotonic_ns()
                work(i)
                events[i].append((start, time.monotonic_ns()))
        except Exception as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return events


def test_two_threads_get_at_once(client, key, long_switch_interval):
    keys = [f"{key}/{i}" for i in range(PAGES)]
    client.batch_put(keys, [np.full(PAGE, i, dtype=np.uint8) for i in range(PAGES)])
    targets = [[np.zeros(PAGE, dtype=np.uint8) for _ in range(PAGES)] for _ in range(2)]

    events = run_two_threads(lambda i: client.batch_get_into(keys, targets[i]))
    assert overlapping(events[0], events[1]), events
    for t in targets:
        assert all(int(page[0]) == i and int(page[-1]) == i for i, page in enumerate(t))


def test_two_threads_put_at_once(client, key, long_switch_interval):
    value = np.ones(PAGE * 4, dtype=np.uint8)
    counter = iter(range(10**6))
    events = run_two_threads(lambda i: client.put(f"{key}/{i}/{next(counter)}", value))
    assert overlapping(events[0], events[1]), events
