"""Use cases. Each service depends only on ports handed to its constructor."""
