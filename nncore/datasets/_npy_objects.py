"""Reading ``.npz`` files whose arrays hold lists of ints, without pickle.

NumPy stores an object array (``dtype=object``, e.g. IMDB's reviews: one
Python list of word indices per review) as a *pickle stream* inside the
``.npy`` member.  ``pickle.load`` on such a stream runs whatever the stream
says -- a tampered file could call ``os.system``.  So this module never
unpickles: it walks the opcodes with :func:`pickletools.genops` (which only
*parses*) and interprets the handful that NumPy writes for a 1-D object array
of lists of ints, on a small stack of plain values:

* the three names NumPy's pickle refers to (``numpy.core.multiarray._reconstruct``
  or ``numpy._core.multiarray._reconstruct``, ``numpy.ndarray``, ``numpy.dtype``)
  are kept as *symbols* -- nothing is ever imported or called;
* ``REDUCE``/``BUILD`` on those symbols are checked against the exact shape of
  NumPy's array recipe: ``_reconstruct(ndarray, (0,), b'b')`` then
  ``BUILD (1, (n,), dtype('O8'), False, [list, list, ...])``;
* every other opcode, name or structure is refused with :class:`UnsafeArrayError`.

Numeric members (labels) are read by NumPy itself with ``allow_pickle=False``.
"""
from __future__ import annotations

import io
import pickletools
import zipfile

import numpy as np

__all__ = ["UnsafeArrayError", "load_npz_lists", "read_object_npy"]

# A member bigger than this (uncompressed) is refused before it is read: the
# real imdb.npz members are ~20 MB, and a zip bomb must not fill the memory.
MAX_MEMBER_BYTES = 1 << 29

_RECONSTRUCT = ("numpy.core.multiarray", "_reconstruct")   # NumPy < 2 spelling
_RECONSTRUCT2 = ("numpy._core.multiarray", "_reconstruct")  # NumPy >= 2 spelling
_NDARRAY = ("numpy", "ndarray")
_DTYPE = ("numpy", "dtype")
# Python 3's protocol 2 spells the bytes b'b' as _codecs.encode('b', 'latin1')
_ENCODE = ("_codecs", "encode")
_ALLOWED_GLOBALS = {_RECONSTRUCT, _RECONSTRUCT2, _NDARRAY, _DTYPE, _ENCODE}

# Opcodes a NumPy object array of lists of ints is written with (protocols 2-5,
# and Python 2's str opcodes, which old files use for b'b' and 'O8').
_ALLOWED_OPS = frozenset("""
    PROTO FRAME STOP GLOBAL STACK_GLOBAL MEMOIZE BINPUT LONG_BINPUT BINGET LONG_BINGET
    MARK TUPLE TUPLE1 TUPLE2 TUPLE3 EMPTY_TUPLE EMPTY_LIST APPEND APPENDS
    BININT BININT1 BININT2 LONG1 NONE NEWTRUE NEWFALSE
    SHORT_BINBYTES BINBYTES SHORT_BINSTRING BINSTRING SHORT_BINUNICODE BINUNICODE
    REDUCE BUILD
""".split())


class UnsafeArrayError(ValueError):
    """A ``.npy`` pickle stream holds something other than lists of ints."""


class _Global:
    """A name the stream refers to; kept as data, never imported."""

    def __init__(self, module, name):
        self.key = (module, name)


class _Dtype:
    """``numpy.dtype('O8')`` as the stream builds it."""


class _ArraySkeleton:
    """``_reconstruct(ndarray, (0,), b'b')``: an array waiting for its BUILD."""

    def __init__(self):
        self.result = None


class _Mark:
    pass


_MARK = _Mark()


def _fail(what, member):
    raise UnsafeArrayError(f"{member}: refused to read the object array: {what}. "
                           "The file is not a NumPy array of lists of integers "
                           "(corrupt or tampered); nothing in it was executed.")


def _pop_mark(stack, member):
    for i in range(len(stack) - 1, -1, -1):
        if stack[i] is _MARK:
            items = stack[i + 1:]
            del stack[i:]
            return items
    _fail("a MARK is missing", member)


def _is_int(v):
    return type(v) is int


def read_object_npy(data: bytes, member: str = "array") -> np.ndarray:
    """The 1-D object array of lists of ints in the ``.npy`` bytes ``data``.

    Raises :class:`UnsafeArrayError` for anything else (other opcodes,
    globals, nesting, dtypes; truncated streams)."""
    fp = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(fp)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fp)
        elif version in ((2, 0), (3, 0)):
            # 3.0 differs only in the header's text encoding, not its layout
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fp)
        else:
            _fail(f"unsupported .npy version {version}", member)
    except UnsafeArrayError:
        raise
    except Exception as exc:  # NumPy's header parser: bad magic, bad dict
        raise UnsafeArrayError(f"{member}: not a valid .npy header ({exc})") from exc
    if dtype != np.dtype(object):
        _fail(f"the header says dtype {dtype}, expected object", member)
    if len(shape) != 1:
        _fail(f"the header says shape {shape}, expected a 1-D array", member)
    result = _run(fp, member)
    if result.shape != tuple(shape):
        _fail(f"the pickle holds shape {result.shape}, the header says {tuple(shape)}", member)
    return result


def _run(fp, member):
    stack, memo = [], {}
    try:
        for op, arg, _pos in pickletools.genops(fp):
            name = op.name
            if name not in _ALLOWED_OPS:
                _fail(f"pickle opcode {name} is not allowed", member)
            if name in ("PROTO", "FRAME"):
                continue
            if name == "STOP":
                if len(stack) != 1 or not isinstance(stack[0], _ArraySkeleton) \
                        or stack[0].result is None:
                    _fail("the stream does not end with one finished array", member)
                return stack[0].result
            if name in ("MEMOIZE", "BINPUT", "LONG_BINPUT"):
                if not stack:
                    _fail("memoize on an empty stack", member)
                memo[len(memo) if name == "MEMOIZE" else arg] = stack[-1]
            elif name in ("BINGET", "LONG_BINGET"):
                if arg not in memo:
                    _fail(f"memo entry {arg} used before it was set", member)
                stack.append(memo[arg])
            elif name == "MARK":
                stack.append(_MARK)
            elif name == "TUPLE":
                stack.append(tuple(_pop_mark(stack, member)))
            elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
                k = int(name[-1])
                if len(stack) < k or any(v is _MARK for v in stack[-k:]):
                    _fail(f"{name} without {k} values", member)
                items = tuple(stack[-k:])
                del stack[-k:]
                stack.append(items)
            elif name == "EMPTY_TUPLE":
                stack.append(())
            elif name == "EMPTY_LIST":
                stack.append([])
            elif name == "APPEND":
                if len(stack) < 2 or not isinstance(stack[-2], list):
                    _fail("APPEND to something not a list", member)
                stack[-2].append(stack.pop())
            elif name == "APPENDS":
                items = _pop_mark(stack, member)
                if not stack or not isinstance(stack[-1], list):
                    _fail("APPENDS to something not a list", member)
                stack[-1].extend(items)
            elif name in ("BININT", "BININT1", "BININT2", "LONG1"):
                stack.append(int(arg))
            elif name == "NONE":
                stack.append(None)
            elif name in ("NEWTRUE", "NEWFALSE"):
                stack.append(name == "NEWTRUE")
            elif name in ("SHORT_BINBYTES", "BINBYTES"):
                stack.append(bytes(arg))
            elif name in ("SHORT_BINSTRING", "BINSTRING"):
                # Python 2 str: genops gives text already (latin-1)
                stack.append(arg if isinstance(arg, str) else bytes(arg).decode("latin-1"))
            elif name in ("SHORT_BINUNICODE", "BINUNICODE"):
                stack.append(str(arg))
            elif name == "GLOBAL":
                module, _, attr = str(arg).partition(" ")
                _push_global(stack, module, attr, member)
            elif name == "STACK_GLOBAL":
                if len(stack) < 2 or not all(isinstance(v, str) for v in stack[-2:]):
                    _fail("STACK_GLOBAL without a module and a name", member)
                attr = stack.pop()
                module = stack.pop()
                _push_global(stack, module, attr, member)
            elif name == "REDUCE":
                if len(stack) < 2:
                    _fail("REDUCE without a callable and arguments", member)
                args = stack.pop()
                func = stack.pop()
                stack.append(_reduce(func, args, member))
            elif name == "BUILD":
                if len(stack) < 2:
                    _fail("BUILD without an object and a state", member)
                state = stack.pop()
                _build(stack[-1], state, member)
    except UnsafeArrayError:
        raise
    except (ValueError, EOFError, IndexError) as exc:
        # genops: truncated data ("expected N bytes ... only M remain"),
        # unknown opcode bytes
        raise UnsafeArrayError(f"{member}: the pickle stream is truncated or malformed "
                               f"({exc})") from exc
    _fail("the stream ends without STOP (truncated)", member)


def _push_global(stack, module, attr, member):
    if (module, attr) not in _ALLOWED_GLOBALS:
        _fail(f"it refers to {module}.{attr}, which is not part of a NumPy array", member)
    stack.append(_Global(module, attr))


def _reduce(func, args, member):
    if not isinstance(func, _Global) or not isinstance(args, tuple):
        _fail("REDUCE on something other than a NumPy array recipe", member)
    if func.key in (_RECONSTRUCT, _RECONSTRUCT2):
        if (len(args) == 3 and isinstance(args[0], _Global) and args[0].key == _NDARRAY
                and args[1] == (0,) and args[2] in (b"b", "b")):
            return _ArraySkeleton()
        _fail("_reconstruct with unexpected arguments", member)
    if func.key == _ENCODE:
        # never called: the text is encoded here, and only this one recipe
        if len(args) == 2 and isinstance(args[0], str) and args[1] in ("latin1", "latin-1") \
                and len(args[0]) <= 16:
            return args[0].encode("latin-1")
        _fail("_codecs.encode with unexpected arguments", member)
    if func.key == _DTYPE:
        if len(args) == 3 and args[0] in ("O8", "O4") and args[1] is False and args[2] is True:
            return _Dtype()
        _fail(f"numpy.dtype{args!r}: only the object dtype is accepted", member)
    _fail(f"calling {'.'.join(func.key)} is not allowed", member)


def _build(obj, state, member):
    if isinstance(obj, _Dtype):
        # (version, byte order, subarray, names, fields, elsize, alignment, flags):
        # the object dtype's state carries nothing we need
        if not isinstance(state, tuple) or len(state) not in (8, 9):
            _fail("unexpected dtype state", member)
        return
    if not isinstance(obj, _ArraySkeleton) or obj.result is not None:
        _fail("BUILD on something other than a fresh array", member)
    if not isinstance(state, tuple) or len(state) != 5:
        _fail("unexpected array state", member)
    version, shape, dtype, fortran, data = state
    if version != 1 or not isinstance(dtype, _Dtype) or not isinstance(fortran, bool):
        _fail("unexpected array state", member)
    if not (isinstance(shape, tuple) and len(shape) == 1 and _is_int(shape[0])):
        _fail(f"array shape {shape!r} is not 1-D", member)
    if not isinstance(data, list) or len(data) != shape[0]:
        _fail("the array's data does not match its shape", member)
    out = np.empty(len(data), dtype=object)
    for i, row in enumerate(data):
        if not isinstance(row, list):
            _fail(f"element {i} is a {type(row).__name__}, not a list of ints", member)
        for v in row:
            if not _is_int(v):
                _fail(f"element {i} holds a {type(v).__name__}, not an int", member)
        out[i] = row
    obj.result = out


def load_npz_lists(path: str, object_members, numeric_members) -> dict:
    """Read the named members of the ``.npz`` at ``path``: object arrays of
    lists of ints through :func:`read_object_npy`, numeric arrays through
    NumPy with ``allow_pickle=False``.  A missing member is an error."""
    out = {}
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise ValueError(f"{path}: not an .npz (zip) file ({exc})") from exc
    with archive:
        names = set(archive.namelist())
        for key in list(object_members) + list(numeric_members):
            member = key + ".npy"
            if member not in names:
                raise ValueError(f"{path}: member {member!r} is missing "
                                 f"(it has {sorted(names)})")
            info = archive.getinfo(member)
            if info.file_size > MAX_MEMBER_BYTES:
                raise UnsafeArrayError(f"{path}: member {member} would unpack to "
                                       f"{info.file_size:,} bytes (limit {MAX_MEMBER_BYTES:,})")
            try:
                data = archive.read(member)
            except (zipfile.BadZipFile, EOFError, OSError) as exc:
                raise ValueError(f"{path}: member {member} is damaged ({exc})") from exc
            if key in object_members:
                out[key] = read_object_npy(data, f"{path}:{member}")
            else:
                try:
                    out[key] = np.lib.format.read_array(io.BytesIO(data), allow_pickle=False)
                except ValueError as exc:
                    raise ValueError(f"{path}: member {member} is not a numeric array "
                                     f"({exc})") from exc
    return out
