"""Noisy (time-conditioned) classifiers and regressors used by classifier-based guidance."""
