"""Checks on a zip archive's directory before any member is read.

Both nncore's ``.npz`` and Keras's ``.keras`` files are zip archives.  A zip's
central directory *declares* each member's sizes; nothing forces them to be
true.  Code that trusts them allocates what a 1 KB file claims (an
architecture "paid for" by huge declared weights, a buffer for a member that
never arrives).  ``check_members`` holds every member to what is physically
possible before anything is read:

* only stored and deflated members (what numpy and Keras write); encrypted,
  bzip2/lzma members are refused;
* a stored member's size must equal its compressed size, a deflated one can
  be at most ``DEFLATE_MAX_RATIO`` times larger (deflate cannot do better,
  so a larger claim is a lie or a bomb);
* every member must lie inside the file (a truncated file is refused here,
  not half-way through loading);
* the declared total is capped;
* names must be plain relative paths (no ``..``, no absolute path, no
  backslash or NUL, no duplicates), so nothing can be written or looked up
  outside the archive.
"""
import os
import zipfile

#: deflate's best ratio is 1032:1 (258-byte matches coded in 2 bits); allow slack
DEFLATE_MAX_RATIO = 1032
DEFLATE_SLACK = 1024
MAX_MEMBERS = 100_000


class ArchiveError(ValueError):
    """The zip archive is damaged, truncated or hostile (a ValueError)."""


def check_name(name, path):
    bad = (not name or name.startswith(("/", "\\")) or "\\" in name or "\x00" in name
           or (len(name) > 1 and name[1] == ":")
           or any(part in ("..", ".") for part in name.split("/")))
    if bad:
        raise ArchiveError(f"{path!r}: refusing archive member {name!r} "
                           "(absolute path, '..' or odd characters)")


def check_members(zf, path, max_total_bytes, allowed_names=None):
    """Validate ``zf.infolist()`` (see the module doc); returns {name: ZipInfo}."""
    infos = zf.infolist()
    if len(infos) > MAX_MEMBERS:
        raise ArchiveError(f"{path!r}: too many archive members ({len(infos)})")
    try:
        archive_size = os.fstat(zf.fp.fileno()).st_size
    except (AttributeError, OSError, ValueError):
        archive_size = None
    out, total = {}, 0
    for zi in infos:
        name = zi.filename
        check_name(name, path)
        if name in out:
            raise ArchiveError(f"{path!r}: archive member {name!r} appears twice")
        if allowed_names is not None and name not in allowed_names and not name.endswith("/"):
            continue
        if zi.flag_bits & 0x1:
            raise ArchiveError(f"{path!r}: archive member {name!r} is encrypted")
        if zi.compress_type == zipfile.ZIP_STORED:
            if zi.file_size != zi.compress_size:
                raise ArchiveError(f"{path!r}: archive member {name!r} declares "
                                   f"{zi.file_size} bytes but stores {zi.compress_size}")
        elif zi.compress_type == zipfile.ZIP_DEFLATED:
            if zi.file_size > DEFLATE_MAX_RATIO * zi.compress_size + DEFLATE_SLACK:
                raise ArchiveError(
                    f"{path!r}: archive member {name!r} declares {zi.file_size} bytes from "
                    f"{zi.compress_size} compressed bytes, more than deflate can produce "
                    "(a zip bomb or a damaged file): refused")
        else:
            raise ArchiveError(f"{path!r}: archive member {name!r} uses compression "
                               f"method {zi.compress_type}; only stored and deflated "
                               "members are read")
        if archive_size is not None and zi.header_offset + zi.compress_size > archive_size:
            raise ArchiveError(f"{path!r}: archive member {name!r} extends past the end "
                               "of the file (truncated file)")
        total += zi.file_size
        if total > max_total_bytes:
            raise ArchiveError(f"{path!r}: the archive's members declare more than "
                               f"{max_total_bytes} bytes in all: refused")
        out[name] = zi
    return out


def read_member(zf, zi, path, limit):
    """Read one member fully, never more than ``limit`` bytes nor more than it
    declares (a member that inflates past its declared size is refused)."""
    if zi.file_size > limit:
        raise ArchiveError(f"{path!r}: archive member {zi.filename!r} is too large "
                           f"({zi.file_size} bytes; at most {limit})")
    with zf.open(zi) as f:
        data = f.read(zi.file_size + 1)
    if len(data) != zi.file_size:
        raise ArchiveError(f"{path!r}: archive member {zi.filename!r} holds {len(data)} "
                           f"bytes, its header says {zi.file_size}")
    return data
