"""The `tt` command-line client: the HTTP client of the API, its commands and their output."""

from tt_core import __version__

__all__ = ["__version__"]
