"""Compiled kernels (built from ``src_cython/``); see ``nncore.backend``."""
