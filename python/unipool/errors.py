"""unipool's exceptions: one class per kind of failure, all under Error.

Each carries the SDK's or server's one-line message (naming the key, node or
option that failed) and ``code``, the status code's name. The classes also
derive from the built-in exception a Python caller would expect, so
``except KeyError`` catches a missing key and ``except ConnectionError`` an
unreachable pool.
"""


class Error(Exception):
    """Base of every unipool error."""

    code = "UNKNOWN"

    def __str__(self):
        return str(self.args[0]) if self.args else ""


class NotFound(Error, KeyError):
    """The key is not in the pool (or every copy is on a node that is down)."""


class Unavailable(Error, ConnectionError):
    """The directory or a node cannot be reached, or is down: retry later or recompute."""


class ResourceExhausted(Error):
    """The pool has no room (everything left is pinned or leased)."""


class DataLoss(Error):
    """The bytes read did not match the stored checksum (never returned as data)."""


class InvalidArgument(Error, ValueError):
    """A bad key, value or target: empty, too long, too small, not contiguous."""


class AlreadyExists(Error):
    """A put of an existing key without replace=True."""


class FailedPrecondition(Error):
    """The call cannot succeed until something changes (e.g. the client is closed)."""


class Aborted(Error):
    """A race with another writer; retry the whole operation."""


class Unauthenticated(Error, PermissionError):
    """The pool refused the credential: no key, the wrong key, or a bad token (key_file)."""


class PermissionDenied(Error, PermissionError):
    """The credential's role or key prefix does not allow this call."""


__all__ = [
    "Error",
    "NotFound",
    "Unavailable",
    "ResourceExhausted",
    "DataLoss",
    "InvalidArgument",
    "AlreadyExists",
    "FailedPrecondition",
    "Aborted",
    "Unauthenticated",
    "PermissionDenied",
]
