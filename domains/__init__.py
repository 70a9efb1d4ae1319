"""Domain plugins: tokenizers, datasets, property oracles, classifiers and metrics for each data type."""
