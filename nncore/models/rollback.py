"""A refused call changes nothing.

Some calls can only find out that they must refuse after they started:
``Sequential.build`` learns that layer 3 cannot take the new shape after
layers 1 and 2 were (re)built for it.  ``all_or_nothing(*objects)`` remembers
the attributes of ``objects`` (one level deep: lists, dicts and sets bound to
them are copied too, since building appends to them) and puts them back when
the block raises, so the model is exactly as it was before the call.

Arrays are not copied: code inside the block must replace weight arrays, not
write into them, before it can still refuse (building creates new arrays).

nncore's global random state is put back too: building draws initial weights
from it, and a refused call that consumed those draws would make the next
(accepted) build initialise differently than the same seed did before.
"""
from contextlib import contextmanager

from nncore import random as nn_random

_CONTAINERS = (list, dict, set)


def _snapshot(obj):
    """(attribute dict, {key: copy of each container's contents})."""
    state = dict(obj.__dict__)
    contents = {k: type(v)(v) for k, v in state.items() if type(v) in _CONTAINERS}
    return state, contents


def _restore(obj, snapshot):
    state, contents = snapshot
    current = obj.__dict__
    current.clear()
    current.update(state)
    # the same container objects, refilled: other objects may hold them
    for key, saved in contents.items():
        container = state[key]
        container.clear()
        if isinstance(container, list):
            container.extend(saved)
        else:
            container.update(saved)


@contextmanager
def all_or_nothing(*objects):
    """Undo every attribute change made to ``objects``, and every draw from
    nncore's random state, if the block raises."""
    saved = [(obj, _snapshot(obj)) for obj in objects]
    rng = nn_random.generator()
    rng_state = rng.bit_generator.state
    try:
        yield
    except BaseException:
        for obj, state in saved:
            _restore(obj, state)
        rng.bit_generator.state = rng_state
        raise
