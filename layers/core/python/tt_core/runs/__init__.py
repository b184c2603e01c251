"""Runs: compilation into chat rows and splits, estimates, stored artifacts and diagnostics."""
