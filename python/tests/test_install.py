"""The package installed two ways, imported from outside the build tree:
`cmake --install` (the SDK's install) and `pip install` of the built package
folder (offline: --no-index --no-build-isolation, nothing is compiled)."""

import os
import subprocess
import sys

import pytest

BUILD = os.environ.get("UNIPOOL_BUILD_DIR", "")

# Run in a fresh interpreter whose only path to unipool is the install.
PROBE = """
import sys, unipool
assert unipool.__file__.startswith(sys.argv[1]), unipool.__file__
with unipool.Client(sys.argv[2]) as c:
    c.put("installed/" + sys.argv[3], b"works")
    assert c.get("installed/" + sys.argv[3]) == b"works"
try:
    c.get("x")
except unipool.Error as e:
    pass
print(unipool.__file__)
"""


def probe(site, cluster, name, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = site
    result = subprocess.run([sys.executable, "-c", PROBE, site, cluster.directory, name],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith(site)


@pytest.fixture
def build_dir():
    if not BUILD:
        pytest.fail("UNIPOOL_BUILD_DIR is not set (ctest sets it to the build folder)")
    return BUILD


def test_cmake_install(build_dir, cluster, tmp_path):
    prefix = tmp_path / "prefix"
    subprocess.run(["cmake", "--install", build_dir, "--component", "python", "--prefix",
                    str(prefix)], check=True, capture_output=True, timeout=120)
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    site = prefix / "lib" / version / "dist-packages"
    assert (site / "unipool" / "kv.py").exists()
    assert (site / "unipool" / "_unipool.pyi").exists()
    probe(str(site), cluster, "cmake", tmp_path)


def test_pip_install(build_dir, cluster, tmp_path):
    target = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-index", "--no-build-isolation",
         "--no-deps", "--disable-pip-version-check", "--target", str(target),
         os.path.join(build_dir, "python")],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    probe(str(target), cluster, "pip", tmp_path)
