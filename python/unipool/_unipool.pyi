"""Type stubs for unipool._unipool (the compiled half of unipool)."""

from typing import Any, Literal, Optional, Sequence, Union

import numpy as np

from unipool.errors import Error

# Any C-contiguous buffer-protocol object: bytes, bytearray, memoryview,
# numpy arrays, torch_tensor.numpy().
_Buffer = Any
# A writable one, for the *_into calls.
_Target = Any
_Errors = Literal["raise", "return"]

class Pending:
    """A transfer running in the background; wait() returns what the
    synchronous call would, or raises its error."""

    def done(self) -> bool: ...
    def wait(self) -> Any: ...

class View:
    """Read-only bytes of one object in the slab of a node on this machine
    (buffer protocol: memoryview(view), numpy.frombuffer(view, dtype)), valid
    and unchanged until the last reference goes."""

    key: str
    nbytes: int
    stale: bool
    detached: bool
    def __len__(self) -> int: ...
    def __buffer__(self, flags: int) -> memoryview: ...

class Client:
    def __init__(
        self,
        directory: str = "127.0.0.1:7300",
        *,
        name: str = ...,
        key_file: str = ...,
        connect_timeout: float = ...,
        io_timeout: float = ...,
        directory_retry: float = ...,
        pool_full_wait: float = ...,
        max_idle_connections: int = ...,
        rdma: Literal["auto", "rc", "uc", "off"] = ...,
        rdma_device: str = ...,
        shm: bool = ...,
        location_cache_entries: int = ...,
        location_cache_ttl: float = ...,
        copy_threads: int = ...,
        max_view_bytes: int = ...,
        prefault_reservations: bool = ...,
    ) -> None: ...
    def __enter__(self) -> "Client": ...
    def __exit__(self, *exc: object) -> None: ...
    def close(self) -> None: ...
    @property
    def closed(self) -> bool: ...
    def put(self, key: str, value: _Buffer, *, replace: bool = False, replicas: int = 1) -> None: ...
    def get(self, key: str) -> bytes: ...
    def get_into(self, key: str, target: _Target) -> int: ...
    def batch_put(
        self,
        keys: Sequence[str],
        values: Sequence[_Buffer],
        *,
        replace: bool = False,
        replicas: int = 1,
        errors: _Errors = "raise",
    ) -> Optional[list[Optional[Error]]]: ...
    def batch_get_into(
        self, keys: Sequence[str], targets: Union[Sequence[_Target], _Target], *, errors: _Errors = "raise"
    ) -> list[Union[int, Error]]: ...
    def exists(self, key: str) -> bool: ...
    def batch_exists(self, keys: Sequence[str]) -> list[bool]: ...
    def lookup_prefix(self, keys: Sequence[str]) -> int: ...
    def get_prefix_into(self, keys: Sequence[str], targets: Union[Sequence[_Target], _Target]) -> int: ...
    def get_view(self, key: str) -> View: ...
    def get_prefix_views(self, keys: Sequence[str]) -> list[View]: ...
    def view_bytes(self) -> int: ...
    def remove(self, key: str) -> None: ...
    def stat(self, key: str) -> dict[str, Any]: ...
    def status(self) -> dict[str, Any]: ...
    def pin(self, key: str, *, prefix: bool = False) -> None: ...
    def unpin(self, key: str, *, prefix: bool = False) -> None: ...
    def list(
        self, prefix: str = "", *, limit: int = 1000, start_after: str = ""
    ) -> list[dict[str, Any]]: ...
    def stats(self) -> dict[str, Any]: ...
    def batch_get_into_async(
        self, keys: Sequence[str], targets: Union[Sequence[_Target], _Target], *, errors: _Errors = "raise"
    ) -> Pending: ...
    def batch_put_async(
        self,
        keys: Sequence[str],
        values: Sequence[_Buffer],
        *,
        replace: bool = False,
        replicas: int = 1,
        errors: _Errors = "raise",
    ) -> Pending: ...
    def get_prefix_into_async(self, keys: Sequence[str], targets: Union[Sequence[_Target], _Target]) -> Pending: ...
    # Tensors and models. numpy has no bfloat16 nor 8-bit floats: BF16
    # tensors come back as uint16 arrays of the raw bits
    # (torch.from_numpy(a.view(numpy.int16)).view(torch.bfloat16) reinterprets them without a
    # copy), F8_E4M3 / F8_E5M2 / F8_E8M0 as uint8; put_tensor takes
    # dtype="BF16" / "F8_E4M3" / "F8_E5M2" for such bits.
    def get_tensor(self, name: str) -> np.ndarray: ...
    def get_tensor_rows(self, name: str, first: int, count: int) -> np.ndarray: ...
    def tensor_info(self, name: str) -> dict[str, Any]: ...
    def load_model(self, name: str) -> dict[str, np.ndarray]: ...
    def put_tensor(
        self,
        name: str,
        array: np.ndarray,
        *,
        dtype: str = "",
        stripe_size: int = 64 << 20,
        replicas: int = 1,
    ) -> None: ...
