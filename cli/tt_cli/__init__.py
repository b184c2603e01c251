"""The `tt` command-line client and the local stack."""

from tt_core import __version__

__all__ = ["__version__"]
