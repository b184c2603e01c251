"""Lambda entry points only: each parses its event and delegates to tt_core."""
