"""The S3-triggered dataset validator function."""
