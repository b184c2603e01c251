"""Pydantic models per resource: the API contract and the stored shapes."""
