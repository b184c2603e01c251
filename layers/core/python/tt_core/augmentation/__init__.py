"""Augmentation of training rows: the target count, the offline EDA augmenter and the language-model one."""
