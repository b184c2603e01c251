"""The public REST API function."""
