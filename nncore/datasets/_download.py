"""Finding, downloading, verifying and caching dataset files.

For every file a dataset needs, :func:`fetch` looks in this order:

1. the folder named by the ``NNCORE_DATA_DIR`` environment variable, or its
   subfolder ``<name>/`` (files the user put there by hand -- used as they
   are, with a warning if their SHA-256 differs from the official one);
2. the cache ``$NNCORE_HOME/datasets/<name>/`` (``NNCORE_HOME`` defaults to
   ``~/.nncore``); a cached file whose hash no longer matches is deleted;
3. the mirrors, in order.  Each download is streamed into a temporary file in
   the cache folder while its SHA-256 is computed; only a verified file is
   moved into place with ``os.replace`` (atomic), so the cache never holds a
   partial or corrupt file, even if the process is killed mid-download or two
   processes download at once.  A failed or corrupt download is deleted and
   the next mirror is tried.

If a file cannot be found anywhere, ONE :class:`DatasetUnavailableError` says
which files are needed and exactly where to put them.

Only ``urllib`` is used (no third-party HTTP client), always with a timeout.
"""
from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import time
import urllib.parse
import warnings
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, TextIO, Tuple

__all__ = [
    "DatasetUnavailableError",
    "RemoteFile",
    "DatasetSpec",
    "nncore_home",
    "cache_dir",
    "sha256_file",
    "resolve_mirrors",
    "fetch",
    "DATA_DIR_ENV",
    "HOME_ENV",
    "MIRRORS_ENV",
    "DEFAULT_TIMEOUT",
]

DATA_DIR_ENV = "NNCORE_DATA_DIR"
HOME_ENV = "NNCORE_HOME"
# Comma- or whitespace-separated base URLs that replace a dataset's built-in
# mirror list (for tests, or an internal mirror on an air-gapped network).
MIRRORS_ENV = "NNCORE_DATASET_MIRRORS"

DEFAULT_TIMEOUT = 30.0  # seconds per socket operation (connect / each read)
_CHUNK = 1 << 16
# Only plain web downloads: urllib would also open file:// and ftp:// URLs,
# which a mirror list has no business pointing at.
_ALLOWED_SCHEMES = ("http", "https")


class DatasetUnavailableError(FileNotFoundError):
    """A dataset's files are neither on disk nor downloadable.

    A ``FileNotFoundError`` (hence ``OSError``), so code that already handles
    missing files handles this too.  The message says where to put the files.
    """


@dataclass(frozen=True)
class RemoteFile:
    """One file of a dataset: its name on the mirrors and its official digest."""

    name: str
    sha256: str                 # the official hex digest (in ``algorithm``)
    size: Optional[int] = None  # exact byte size, when known (caps downloads)
    # Keras pins some files (IMDB's word index) by MD5 only; that is the one
    # official digest there is for them.
    algorithm: str = "sha256"


@dataclass(frozen=True)
class DatasetSpec:
    """What to fetch for one dataset.  ``name`` is the cache folder name."""

    name: str
    title: str
    files: Tuple[RemoteFile, ...]

    def file(self, name: str) -> RemoteFile:
        for f in self.files:
            if f.name == name:
                return f
        raise KeyError(name)


# --------------------------------------------------------------------------
# Locations
# --------------------------------------------------------------------------
def nncore_home() -> str:
    """``$NNCORE_HOME`` if set, else ``~/.nncore`` (read at call time)."""
    home = os.environ.get(HOME_ENV)
    return os.path.abspath(os.path.expanduser(home if home else os.path.join("~", ".nncore")))


def cache_dir(name: str) -> str:
    """The cache folder of dataset ``name`` (not created here)."""
    return os.path.join(nncore_home(), "datasets", name)


def _user_data_dir() -> Optional[str]:
    value = os.environ.get(DATA_DIR_ENV)
    return os.path.abspath(os.path.expanduser(value)) if value else None


def sha256_file(path: str, algorithm: str = "sha256") -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def resolve_mirrors(default: Sequence[str], override: Optional[Sequence[str]] = None) -> List[str]:
    """Mirror base URLs to try: the ``override`` argument if given, else the
    ``NNCORE_DATASET_MIRRORS`` environment variable if set, else ``default``."""
    if override is not None:
        if isinstance(override, str):  # a lone URL is an easy mistake to forgive
            override = [override]
        mirrors = list(override)
    elif os.environ.get(MIRRORS_ENV, "").strip():
        mirrors = os.environ[MIRRORS_ENV].replace(",", " ").split()
    else:
        mirrors = list(default)
    # Base URLs are joined with file names, so each must end with a slash.
    return [m if m.endswith("/") else m + "/" for m in mirrors]


# --------------------------------------------------------------------------
# Progress bar
# --------------------------------------------------------------------------
class _ProgressBar:
    """A one-line download progress bar on stderr.

    On a terminal it redraws in place with ``\\r``; when stderr is a file or
    pipe (logs, CI, pytest capture) it writes only a start and an end line, so
    logs do not fill up with carriage-return noise.
    """

    WIDTH = 30

    def __init__(self, label: str, total: Optional[int], stream: Optional[TextIO] = None,
                 live: Optional[bool] = None):
        self.stream = stream if stream is not None else sys.stderr
        self.label = label
        self.total = total
        if live is None:
            isatty = getattr(self.stream, "isatty", None)
            live = bool(isatty and isatty())
        self.live = live
        self._last_draw = 0.0
        self.stream.write(f"Downloading {label}\n")
        self.stream.flush()

    @staticmethod
    def _mb(n: int) -> str:
        return f"{n / 1e6:.1f} MB"

    def render(self, done: int) -> str:
        if self.total:
            frac = min(done / self.total, 1.0)
            filled = int(frac * self.WIDTH)
            bar = "#" * filled + "." * (self.WIDTH - filled)
            return f"[{bar}] {frac * 100:5.1f}% {self._mb(done)}/{self._mb(self.total)}"
        return f"[{'?' * self.WIDTH}] {self._mb(done)}"

    def update(self, done: int) -> None:
        now = time.monotonic()
        if self.live and now - self._last_draw >= 0.1:  # at most 10 redraws/s
            self._last_draw = now
            self.stream.write("\r" + self.render(done))
            self.stream.flush()

    def close(self, done: int, ok: bool) -> None:
        status = "done" if ok else "FAILED"
        prefix = "\r" if self.live else ""
        self.stream.write(f"{prefix}{self.render(done)} {status}\n")
        self.stream.flush()


# --------------------------------------------------------------------------
# Download of one file from one URL
# --------------------------------------------------------------------------
_DIGEST_NAMES = {"sha256": "SHA-256", "md5": "MD5"}


class _DownloadFailed(Exception):
    """This URL did not give us the right file; try the next mirror."""

    def __init__(self, reason: str, mirror_dead: bool = False):
        super().__init__(reason)
        self.mirror_dead = mirror_dead  # connection-level: skip for later files


def _download(url: str, rf: RemoteFile, dest: str, timeout: float, progress: bool) -> None:
    """Download ``url`` to ``dest`` atomically, verifying size and SHA-256."""
    # Imported here, not at module level: urllib.request pulls in http.client,
    # email, ssl ... (~30 ms) and is only needed when actually downloading.
    import http.client
    import urllib.error
    import urllib.request

    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in _ALLOWED_SCHEMES:
        raise _DownloadFailed(f"unsupported URL scheme {scheme!r} (only http/https)", True)
    folder = os.path.dirname(dest)
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise _DownloadFailed(f"cannot create cache folder {folder} ({exc})") from exc
    request = urllib.request.Request(url, headers={"User-Agent": "nncore-datasets"})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:  # server answered: file missing there
        raise _DownloadFailed(f"HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        # refused, DNS failure, timeout, garbage instead of HTTP
        reason = getattr(exc, "reason", exc)
        raise _DownloadFailed(f"cannot connect ({reason})", mirror_dead=True) from exc

    with response:
        declared = response.headers.get("Content-Length")
        declared = int(declared) if declared and declared.isdigit() else None
        # Never accept more than the known size: a misbehaving server must not
        # be able to fill the disk.  Unknown size -> 1 GiB sanity cap.
        limit = rf.size if rf.size is not None else 1 << 30
        if declared is not None and declared > limit:
            raise _DownloadFailed(f"server announces {declared:,} bytes, expected {limit:,}")

        # Temporary file in the destination folder: os.replace is only atomic
        # within one file system.
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{rf.name}.", suffix=".part", dir=folder)
        except OSError as exc:
            raise _DownloadFailed(f"cannot write to {folder} ({exc})") from exc
        bar = _ProgressBar(url, declared or rf.size) if progress else None
        done = 0
        ok = False
        try:
            digest = hashlib.new(rf.algorithm)
            with os.fdopen(fd, "wb") as out:
                while True:
                    try:
                        chunk = response.read(_CHUNK)
                    except (OSError, ValueError, http.client.HTTPException) as exc:
                        # timeout / connection reset / IncompleteRead mid-stream
                        raise _DownloadFailed(f"download interrupted ({exc})") from exc
                    if not chunk:
                        break
                    done += len(chunk)
                    if done > limit:
                        raise _DownloadFailed(f"more than the expected {limit:,} bytes")
                    digest.update(chunk)
                    out.write(chunk)
                    if bar:
                        bar.update(done)
                out.flush()
                os.fsync(out.fileno())  # data on disk before the rename publishes it
            if declared is not None and done != declared:
                raise _DownloadFailed(f"truncated download ({done:,} of {declared:,} bytes)")
            if digest.hexdigest() != rf.sha256:
                raise _DownloadFailed(
                    f"corrupt download: {_DIGEST_NAMES.get(rf.algorithm, rf.algorithm)} {digest.hexdigest()} != expected {rf.sha256}")
            os.chmod(tmp, 0o644)  # mkstemp creates 0600; cache files are plain data
            os.replace(tmp, dest)
            ok = True
        except OSError as exc:  # disk full, permissions: this copy is lost
            raise _DownloadFailed(f"cannot write {dest} ({exc})") from exc
        finally:
            if bar:
                bar.close(done, ok)
            if not ok:
                try:
                    os.remove(tmp)
                except FileNotFoundError:
                    pass


# --------------------------------------------------------------------------
# Resolution of all files of a dataset
# --------------------------------------------------------------------------
def _unavailable_message(spec: DatasetSpec, missing: str, failures: List[str]) -> str:
    names = "\n".join(f"    {f.name}" for f in spec.files)
    tried = "\n".join(f"    {line}" for line in failures) if failures else "    (downloads disabled)"
    return (
        f"{spec.title} is not available: {missing!r} is not on disk and could not be "
        f"downloaded.\nDownload attempts:\n{tried}\n"
        f"To use {spec.title} without network access, put these {len(spec.files)} files\n"
        f"{names}\n"
        f"in a folder and set the environment variable {DATA_DIR_ENV} to that folder, "
        f"or put them in the cache folder\n    {cache_dir(spec.name)}"
    )


def fetch(
    spec: DatasetSpec,
    mirrors: Sequence[str],
    *,
    download: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
    progress: bool = True,
) -> Dict[str, str]:
    """Return ``{file name: local path}`` for every file of ``spec``.

    ``mirrors`` are base URLs, tried in order (see :func:`resolve_mirrors`).
    With ``download=False`` the network is never touched.
    Raises :class:`DatasetUnavailableError` if some file cannot be obtained.
    """
    user_dir = _user_data_dir()
    cache = cache_dir(spec.name)
    paths: Dict[str, str] = {}
    dead_mirrors = set()  # unreachable hosts are not retried for the next file

    for rf in spec.files:
        # 1. Files the user placed by hand: $NNCORE_DATA_DIR/<name>/ first
        #    (MNIST and Fashion-MNIST share file names, so one data dir can
        #    hold both in subfolders), then $NNCORE_DATA_DIR itself.
        if user_dir is not None:
            candidate = next((c for c in (os.path.join(user_dir, spec.name, rf.name),
                                          os.path.join(user_dir, rf.name))
                              if os.path.isfile(c)), None)
            if candidate is not None:
                if sha256_file(candidate, rf.algorithm) != rf.sha256:
                    # The user chose these files explicitly (maybe a re-packed
                    # copy), so use them -- but say they are not the official ones.
                    warnings.warn(
                        f"{candidate}: SHA-256 differs from the official {spec.title} "
                        f"file {rf.name}; using it anyway", RuntimeWarning, stacklevel=3)
                paths[rf.name] = candidate
                continue

        # 2. The cache: only verified files are ever written there, so a
        #    mismatch means later damage; drop the file and download again.
        cached = os.path.join(cache, rf.name)
        if os.path.isfile(cached):
            if sha256_file(cached, rf.algorithm) == rf.sha256:
                paths[rf.name] = cached
                continue
            warnings.warn(f"{cached}: cached file is corrupt (SHA-256 mismatch); "
                          "deleting it and downloading again", RuntimeWarning, stacklevel=3)
            os.remove(cached)

        # 3. The mirrors.  A failed attempt must not leave an empty cache
        # folder behind (~/.nncore/datasets/... appearing after an offline run).
        failures: List[str] = []
        created = _missing_dirs(cache) if download else []
        if download:
            for base in mirrors:
                url = urllib.parse.urljoin(base, rf.name)
                if base in dead_mirrors:
                    failures.append(f"{url}: skipped (host unreachable for a previous file)")
                    continue
                try:
                    _download(url, rf, cached, timeout, progress)
                except _DownloadFailed as exc:
                    failures.append(f"{url}: {exc}")
                    if exc.mirror_dead:
                        dead_mirrors.add(base)
                    continue
                paths[rf.name] = cached
                break
            if not mirrors:
                failures.append("(no mirrors configured)")
        if rf.name not in paths:
            _remove_if_empty(created)
            raise DatasetUnavailableError(_unavailable_message(spec, rf.name, failures))
    return paths


def _missing_dirs(folder: str) -> List[str]:
    """``folder`` and those of its parents that do not exist yet, deepest first."""
    out = []
    folder = os.path.abspath(folder)
    while not os.path.exists(folder):
        out.append(folder)
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    return out


def _remove_if_empty(folders: List[str]) -> None:
    """Remove the folders this call created, if nothing was put in them."""
    for folder in folders:
        try:
            os.rmdir(folder)          # only succeeds when empty
        except OSError:
            return
