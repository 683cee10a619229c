"""Atomic file writes shared by every nncore save path (.npz, .keras, .h5).

``atomic_write(path, write)`` calls ``write(fileobj)`` on a temporary file in
the destination's folder, fsyncs it and renames it over the destination with
``os.replace``, so a reader sees either the old file or the new one, never a
half-written one.  Around that:

* **Symlinks** are written *through*: when ``path`` is a symbolic link the
  file it points to is replaced and the link stays a link (what a plain
  ``open(path, 'wb')`` -- and so Keras/h5py -- does).  Renaming over the link
  itself would silently turn it into a regular file.
* **Permissions** of an existing destination are kept: the temporary file gets
  the old file's mode bits (a private 0600 model stays 0600) and, when we may,
  its owner.  A new file gets the usual ``0666 & ~umask``.
* **Ctrl-C** (SIGINT, main thread) is deferred from before the temporary
  file is created until it is renamed: the save completes (or, on an error, is rolled back) and then the
  ``KeyboardInterrupt`` is raised from here, once, cleanly.  A signal can
  therefore never leave a half-written, missing or stray temporary file.
* On any error the temporary file is removed and the destination untouched.
"""
import os
import secrets
import stat

#: how many symlinks we follow before calling it a loop (as the OS does)
_MAX_LINKS = 40


def resolve_destination(path):
    """The regular-file path a save to ``path`` must replace: ``path`` itself,
    or, for a symlink (chain), the file it finally points to."""
    path = os.fspath(path)
    seen = 0
    while os.path.islink(path):
        seen += 1
        if seen > _MAX_LINKS:
            raise OSError(f"cannot save to {path!r}: too many levels of symbolic links")
        target = os.readlink(path)
        if not os.path.isabs(target):
            target = os.path.join(os.path.dirname(path), target)
        path = os.path.normpath(target)
    return path


def _fsync_dir(folder):
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _open_temp(folder, base):
    """A new file in ``folder`` created with O_EXCL (so the umask applies as
    for any new file); returns (fd, path)."""
    for _ in range(100):
        tmp = os.path.join(folder, f".{base}.{secrets.token_hex(6)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                         0o666)
        except FileExistsError:
            continue
        except PermissionError as e:
            raise PermissionError(e.errno, f"cannot save into folder {folder!r}: no "
                                  "permission to create files there") from None
        return fd, tmp
    raise OSError(f"could not create a temporary file in {folder!r}")


def _copy_mode_and_owner(fd, old):
    """Give the temporary file the permission bits (and owner) of the file it
    replaces; the owner only where the OS lets us."""
    if os.chmod in os.supports_fd:
        os.chmod(fd, stat.S_IMODE(old.st_mode))
    if hasattr(os, "fchown"):
        try:
            st = os.fstat(fd)
            if (st.st_uid, st.st_gid) != (old.st_uid, old.st_gid):
                os.fchown(fd, old.st_uid, old.st_gid)
        except OSError:
            pass        # not root: the new file is ours, as with any rewrite


def _deferred_interrupt():
    # imported here: nncore.models imports nncore.saving lazily and vice versa
    from nncore.models.interrupt import DeferredInterrupt
    return DeferredInterrupt()


def atomic_write(path, write, overwrite=True, what="save"):
    """Write a file atomically with ``write(fileobj)``; see the module doc."""
    path = os.fspath(path)
    dest = resolve_destination(path)
    if os.path.isdir(dest):
        raise IsADirectoryError(f"{what}: cannot save to {path!r}: it is a folder")
    if not overwrite and os.path.lexists(path) and os.path.exists(dest):
        raise FileExistsError(f"{path!r} exists and overwrite=False")
    folder = os.path.dirname(os.path.abspath(dest))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"cannot save to {path!r}: folder {folder!r} does not exist")
    try:
        old = os.stat(dest)
    except FileNotFoundError:
        old = None
    if old is not None and not stat.S_ISREG(old.st_mode):
        # a link to /dev/null, a FIFO or a socket: renaming over it would
        # replace a system object with a model file
        raise OSError(f"{what}: cannot save to {path!r}: {dest!r} is not a regular file")
    with _deferred_interrupt():
        fd, tmp = _open_temp(folder, os.path.basename(dest))
        f = None
        try:
            if old is not None:
                _copy_mode_and_owner(fd, old)
            f = os.fdopen(fd, "wb")
            with f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, dest)
        except BaseException:
            # the descriptor is ours until fdopen owns it: an error in chmod
            # or fdopen itself must not leak it
            if f is None:
                try:
                    os.close(fd)
                except OSError:
                    pass
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        _fsync_dir(folder)
    # leaving the with-block raises KeyboardInterrupt if a SIGINT came meanwhile
