"""A real model reusing KV from the pool across processes (examples/kv_reuse.py):
process A prefills a prompt and stores its KV blocks; process B, given the
prompt plus a new suffix, reads the cached prefix KV from the pool, computes
only the suffix, and matches a full recompute within the tolerance that
kv_reuse.py states and explains."""

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("torch")

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "examples")


def run(mode, directory, *extra):
    result = subprocess.run(
        [sys.executable, os.path.join(EXAMPLES, "kv_reuse.py"), mode, "--directory", directory,
         *extra], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    print(result.stderr, end="")
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_second_process_reuses_the_prefix(cluster):
    a = run("prefill", cluster.directory)
    assert a == {"prefilled_tokens": 512, "blocks": 32, "new_blocks": 32}
    b = run("reuse", cluster.directory)
    assert b["hit_tokens"] == 512
    assert b["computed_tokens"] == 64
    assert b["allclose"]
    assert b["max_logit_difference"] <= b["tolerance"]
    # The check has teeth: a wrong prefix cache is far outside the tolerance.
    assert b["wrong_cache_difference"] > 100 * b["tolerance"]


def test_nothing_cached_computes_everything(cluster):
    b = run("reuse", cluster.directory, "--namespace", "never-stored")
    assert b["hit_tokens"] == 0 and b["computed_tokens"] == 576
    assert b["max_logit_difference"] == 0.0
