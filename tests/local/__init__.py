"""The local stack: its process launcher, gateway and journal."""
