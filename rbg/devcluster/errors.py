"""Errors of the local cluster tooling: each carries one line a user can act on."""


class DevClusterError(Exception):
    """A failure with a one-line, user-facing cause."""
