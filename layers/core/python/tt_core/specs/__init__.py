"""Behaviour specs: the spec prompt that training, evaluation and serving share, and spec lint."""
