"""The local stack: the product's handlers and state machine on one machine, AWS emulated by moto."""
