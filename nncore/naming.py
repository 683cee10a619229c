"""Automatic object names: 'dense', 'dense_1', ... unique per process, like Keras."""
import re
from collections import defaultdict

_counts = defaultdict(int)


def to_snake_case(name):
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    # a digit does not start a word: Conv2D -> conv2d, as Keras names it
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def unique_name(base):
    """'base' the first time, then 'base_1', 'base_2', ..."""
    n = _counts[base]
    _counts[base] += 1
    return base if n == 0 else f"{base}_{n}"


def reset():
    """Forget issued names (``nncore.backend.clear_session``)."""
    _counts.clear()
