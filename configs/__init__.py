"""Hydra configuration tree of guide-gen (a package so installed copies can find it)."""
