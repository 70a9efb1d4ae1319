"""The ``guide-gen`` command line: thin wrappers over library functions."""
