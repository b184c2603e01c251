"""One construct per area of the service stack, each with keyword-only typed inputs."""
