"""The nncore file container: one ``.npz`` (a zip of ``.npy`` members).

Members (all written by ``write_npz``, all read with ``allow_pickle=False``):

    format_version    int64 scalar: the container's version (FORMAT_VERSION)
    metadata          uint8 1-D: UTF-8 JSON document (architecture, weight
                      manifest, compile config, optimizer state, layer state)
    w0, w1, ...       the weight arrays, named in the manifest
    o0_0, o0_1, ...   optimizer slots (variable 0 slot 0, ...), named in the
                      metadata's optimizer_state

Writing is atomic (``nncore.saving.atomic``): the archive is written to a
temporary file in the target's folder, flushed and fsync'ed, then renamed over
the target with ``os.replace``; on any error the temporary file is removed and
an existing target is left untouched.  Symlinks are written through and the
target's permission bits are kept.

Reading never trusts the file: every member's ``.npy`` header is parsed and
checked (dtype, shape, declared size against the member's real size) before
its data is read, so a hostile file cannot make nncore allocate more memory
than the file itself holds, unpickle anything, or crash with anything but a
``ValueError``.
"""
import json
import math
import os
import struct
import zipfile
import zlib

import numpy as np

from nncore.saving import safe_zip
from nncore.saving.atomic import atomic_write

FORMAT_NAME = "nncore"
FORMAT_VERSION = 1
SUPPORTED_VERSIONS = (1,)

MAX_MEMBERS = 100_000
#: the members of one file may declare at most this many bytes in all
MAX_TOTAL_BYTES = 2 ** 34
MAX_METADATA_BYTES = 64 * 2 ** 20
MAX_JSON_DEPTH = 64
#: dtypes a member may have; anything else (objects, structs, strings) is refused
ALLOWED_DTYPES = {np.dtype(t) for t in ("float16", "float32", "float64", "int64",
                                        "int32", "uint8")}
FLOAT_DTYPES = {np.dtype(t) for t in ("float16", "float32", "float64")}


class FormatError(ValueError):
    """The file is not a valid nncore .npz (a ValueError)."""


# --------------------------------------------------------------- writing
def _write_arrays(fileobj, arrays):
    """Write ``arrays`` (name -> ndarray) as an uncompressed npz into fileobj.

    Writing through a file object keeps np.savez from appending '.npz'."""
    np.savez(fileobj, **arrays)


def write_npz(path, arrays, overwrite=True):
    """Atomically write ``arrays`` (name -> ndarray) to ``path`` (see
    ``nncore.saving.atomic`` for symlinks, permissions and Ctrl-C)."""
    atomic_write(path, lambda f: _write_arrays(f, arrays), overwrite=overwrite)


def json_default(obj):
    """NumPy scalars and arrays in configs become plain JSON values."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray) and obj.size <= 10_000:
        return obj.tolist()
    if isinstance(obj, (tuple, set, frozenset)):
        return list(obj)
    raise TypeError(f"{type(obj).__name__} object {obj!r} cannot be saved in a config "
                    "(configs hold numbers, strings, lists and dicts)")


def dumps(obj, **kwargs):
    """json.dumps for configs: NumPy scalars allowed, NaN/inf refused (ValueError)."""
    kwargs.setdefault("default", json_default)
    kwargs.setdefault("allow_nan", False)
    try:
        return json.dumps(obj, **kwargs)
    except (TypeError, ValueError, RecursionError) as e:
        raise ValueError(f"the model's configuration cannot be written as JSON: {e}") from None


def json_array(obj):
    """A JSON document as a uint8 array (no pickling, no unicode dtypes)."""
    data = dumps(obj, separators=(",", ":")).encode("utf-8")
    return np.frombuffer(data, dtype=np.uint8).copy()


# --------------------------------------------------------------- reading
def _reject_constant(name):
    raise FormatError(f"invalid JSON: {name} is not allowed")


def _depth_ok(obj, depth=0):
    if depth > MAX_JSON_DEPTH:
        return False
    if isinstance(obj, dict):
        return all(_depth_ok(v, depth + 1) for v in obj.values())
    if isinstance(obj, list):
        return all(_depth_ok(v, depth + 1) for v in obj)
    return True


def parse_json(text, what="JSON"):
    """json.loads that only ever raises ValueError (no NaN/Infinity, bounded depth)."""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as e:
            raise FormatError(f"{what} is not valid UTF-8: {e}") from None
    if not isinstance(text, str):
        raise TypeError(f"{what} must be a str, got {type(text).__name__}")
    if len(text) > MAX_METADATA_BYTES:
        raise FormatError(f"{what} is too large ({len(text)} characters)")
    try:
        obj = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise FormatError(f"{what} is nested too deeply") from None
    except FormatError:
        raise
    except ValueError as e:
        raise FormatError(f"{what} is not valid JSON: {e}") from None
    if not _depth_ok(obj):
        raise FormatError(f"{what} is nested too deeply")
    return obj


class ArrayInfo:
    __slots__ = ("name", "shape", "dtype", "size")

    def __init__(self, name, shape, dtype):
        self.name, self.shape, self.dtype = name, shape, dtype
        self.size = math.prod(shape)


class NpzReader:
    """Validated, lazy access to the members of an nncore .npz file.

    Opening parses the zip directory and every member's .npy header; nothing
    larger than a header is read until ``array()`` is called."""

    def __init__(self, path):
        self.path = os.fspath(path)
        if not os.path.isfile(self.path):
            if os.path.exists(self.path):
                raise FormatError(f"{self.path!r} is not a file")
            raise FileNotFoundError(f"no such file: {self.path!r}")
        self._zip = None
        try:
            self._zip = zipfile.ZipFile(self.path, "r")
            self._index()
        except FormatError:
            self.close()
            raise
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError,
                NotImplementedError, RuntimeError, OverflowError, KeyError, struct.error) as e:
            self.close()
            if isinstance(e, (FileNotFoundError, PermissionError)):
                raise
            raise FormatError(f"{self.path!r} is not a valid nncore .npz file "
                              f"(damaged, truncated or not an .npz archive): {e}") from None

    def _index(self):
        # declared sizes are checked against what the file can hold before
        # anything (a header, an architecture priced by them) is read
        try:
            infos = safe_zip.check_members(self._zip, self.path, MAX_TOTAL_BYTES).values()
        except safe_zip.ArchiveError as e:
            raise FormatError(str(e)) from None
        self.members = {}
        for zi in infos:
            name = zi.filename
            if not name.endswith(".npy"):
                raise FormatError(f"{self.path!r}: unexpected member {name!r} "
                                  "(an .npz holds only .npy arrays)")
            key = name[:-4]
            if key in self.members:
                raise FormatError(f"{self.path!r}: duplicate member {name!r}")
            self.members[key] = self._header(zi, key)

    def _header(self, zi, key):
        with self._zip.open(zi) as f:
            try:
                version = np.lib.format.read_magic(f)
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
                elif version == (2, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
                else:
                    raise FormatError(f"{self.path!r}: member {key!r} uses .npy "
                                      f"version {version}, which nncore does not read")
            except FormatError:
                raise
            except (ValueError, EOFError, SyntaxError, TypeError, struct.error) as e:
                raise FormatError(f"{self.path!r}: member {key!r} has a damaged "
                                  f".npy header: {e}") from None
            offset = f.tell()
        if not isinstance(dtype, np.dtype) or dtype.hasobject or dtype.fields is not None \
                or dtype not in ALLOWED_DTYPES:
            raise FormatError(f"{self.path!r}: member {key!r} has dtype {dtype}, which an "
                              "nncore file never holds (object/pickled arrays are refused)")
        if fortran:
            raise FormatError(f"{self.path!r}: member {key!r} is Fortran-ordered")
        if not isinstance(shape, tuple) or len(shape) > 32 or \
                any(not isinstance(d, int) or d < 0 for d in shape):
            raise FormatError(f"{self.path!r}: member {key!r} has an invalid shape {shape!r}")
        info = ArrayInfo(key, shape, dtype)
        if offset + info.size * dtype.itemsize != zi.file_size:
            raise FormatError(f"{self.path!r}: member {key!r} declares shape {shape} "
                              f"({info.size * dtype.itemsize} bytes) but holds "
                              f"{zi.file_size - offset} bytes")
        return info

    def __contains__(self, key):
        return key in self.members

    def info(self, key):
        if key not in self.members:
            raise FormatError(f"{self.path!r}: member {key!r} is missing")
        return self.members[key]

    def array(self, key, shape=None, dtypes=None, what=None):
        """The member ``key``, after checking its header against ``shape``
        and ``dtypes`` (a set of np.dtype)."""
        info = self.info(key)
        what = what or f"array {key!r}"
        if shape is not None and info.shape != tuple(shape):
            raise FormatError(f"{self.path!r}: {what} has shape {info.shape}, "
                              f"expected {tuple(shape)}")
        if dtypes is not None and info.dtype not in dtypes:
            raise FormatError(f"{self.path!r}: {what} has dtype {info.dtype}, expected "
                              f"{' or '.join(sorted(str(d) for d in dtypes))}")
        try:
            with self._zip.open(key + ".npy") as f:
                arr = np.load(f, allow_pickle=False)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError,
                NotImplementedError, RuntimeError, struct.error) as e:
            raise FormatError(f"{self.path!r}: {what} could not be read "
                              f"(damaged file): {e}") from None
        if not isinstance(arr, np.ndarray) or arr.shape != info.shape or arr.dtype != info.dtype:
            raise FormatError(f"{self.path!r}: {what} does not match its header")
        return arr

    def version(self):
        arr = self.array("format_version", what="format_version")
        if arr.shape != () or arr.dtype.kind not in "iu":
            raise FormatError(f"{self.path!r}: format_version must be an integer scalar")
        v = int(arr)
        if v not in SUPPORTED_VERSIONS:
            raise FormatError(
                f"{self.path!r} uses nncore file format version {v}; this nncore "
                f"reads version(s) {', '.join(map(str, SUPPORTED_VERSIONS))}. "
                + ("Upgrade nncore to load it." if v > FORMAT_VERSION else ""))
        return v

    def metadata(self):
        """Check the format version, then return the metadata JSON (a dict)."""
        if "format_version" not in self.members or "metadata" not in self.members:
            raise FormatError(f"{self.path!r} is an .npz file but not one written by "
                              "nncore (no format_version/metadata members)")
        self.version()
        info = self.info("metadata")
        if len(info.shape) != 1 or info.dtype != np.uint8 or info.size > MAX_METADATA_BYTES:
            raise FormatError(f"{self.path!r}: metadata must be a 1-D uint8 array "
                              f"of at most {MAX_METADATA_BYTES} bytes")
        meta = parse_json(self.array("metadata").tobytes(), f"{self.path!r} metadata")
        if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
            raise FormatError(f"{self.path!r}: metadata is not an nncore metadata object")
        return meta

    def close(self):
        if self._zip is not None:
            self._zip.close()
            self._zip = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
