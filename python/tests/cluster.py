"""A real local unipool cluster for tests and benchmarks.

Starts `unipoolctl cluster up` (a directory and N pool nodes as child
processes on loopback, on a free port, no dashboard), reads the directory's
address from its output, and stops it with SIGTERM. The binaries are found in
$UNIPOOL_BIN_DIR (ctest sets it to build/bin).
"""

import os
import signal
import subprocess
import tempfile
import time


def bin_dir():
    path = os.environ.get("UNIPOOL_BIN_DIR")
    if not path:
        raise RuntimeError("UNIPOOL_BIN_DIR is not set: point it at the build's bin/ folder")
    return path


class LocalCluster:
    """`with LocalCluster(nodes=2) as cluster: cluster.directory` is HOST:PORT."""

    def __init__(self, nodes=2, pool_size="256MiB", start_timeout=60.0, key_file=None,
                 tls_dir=None):
        self.nodes = nodes
        self.key_file = key_file
        self.tls_dir = tls_dir
        self.pool_size = pool_size
        self.start_timeout = start_timeout
        self.directory = None
        self._work = None
        self._process = None

    def __enter__(self):
        self._work = tempfile.TemporaryDirectory(prefix="unipool-pytest-")
        args = [os.path.join(bin_dir(), "unipoolctl")]
        if self.key_file:
            args.append("--key-file=" + self.key_file)
        args += ["cluster", "up",
                "--nodes", str(self.nodes), "--pool-size", self.pool_size,
                "--listen", "127.0.0.1:0", "--http=", "--work-dir", self._work.name]
        if self.tls_dir:
            args.append("--tls-dir=" + self.tls_dir)
        self._process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                         text=True)
        deadline = time.monotonic() + self.start_timeout
        # The launcher prints its address lines only once every node is up.
        for line in self._process.stdout:
            if line.strip().startswith("directory"):
                self.directory = line.split()[1]
            if line.startswith("Ctrl-C"):
                break
            if time.monotonic() > deadline:
                break
        if self.directory is None:
            self.__exit__(None, None, None)
            raise RuntimeError("unipoolctl cluster up did not start: " + self._stderr())
        return self

    def node_pids(self):
        """The pids of the node processes (children of the launcher)."""
        pids = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parent = int(f.read().rsplit(")", 1)[1].split()[1])
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    command = f.read().split(b"\0")[0]
            except (OSError, ValueError, IndexError):
                continue
            if parent == self._process.pid and command.endswith(b"unipool-node"):
                pids.append(int(entry))
        return sorted(pids)

    def _stderr(self):
        if self._process.poll() is None:
            return "(still running)"
        return self._process.stderr.read()[-2000:]

    def __exit__(self, *exc):
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._process is not None:
            self._process.stdout.close()
            self._process.stderr.close()
        if self._work is not None:
            self._work.cleanup()
        return False
