"""unipool: a pool of memory across machines for KV-cache pages and tensors.

    import numpy as np, unipool
    with unipool.Client("127.0.0.1:7300") as pool:
        pool.put("greeting", b"hello")
        page = np.empty(5, dtype=np.uint8)
        pool.get_into("greeting", page)

Client (compiled, unipool._unipool) talks to the pool; errors are the
exception classes of unipool.errors, all under unipool.Error; unipool.kv
stores and finds a model's KV cache by token prefix.
"""

from unipool import errors
from unipool._unipool import Client, Pending, View
from unipool.errors import *  # noqa: F401,F403  (Error and its subclasses)

__all__ = ["Client", "Pending", "View"] + errors.__all__
