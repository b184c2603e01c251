"""The API-key Lambda authorizer."""
