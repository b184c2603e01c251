"""Augmentation of training rows: the target count, dedup and the language-model augmenter."""
