"""Writes that fail for an OS reason (no space, read-only file system, I/O error, no permission): one error,
`WriteFailed`, that names the file and the reason in one line, and helpers that leave no temporary file behind.

Every file a run or the benchmark writes goes through `writing` (or `write_text_atomic`, which uses it): checkpoints,
metrics.csv, final.json, config.json, videos, the dataset cache, the benchmark's outputs. From a script's command
line a WriteFailed prints `error: could not write <file>: <reason> (<errno name>); <what to do>` and exits with
status 4 (`utils.run.command.cli`); `utils.run.Run` adds the last good checkpoint to what to do.
"""

from __future__ import annotations

import contextlib
import errno as errnos
import os
from collections.abc import Iterator
from pathlib import Path

EXIT_WRITE_FAILED = 4  # the exit status of a command line that stops on a WriteFailed (beside EXIT_DIVERGED = 3)
# The OS reasons a write fails for, looked for in the text of an error that carries no errno.
REASONS = (errnos.ENOSPC, errnos.EDQUOT, errnos.EROFS, errnos.EIO, errnos.EACCES, errnos.EPERM, errnos.EFBIG)


class WriteFailed(OSError):
    """A file could not be written, for the OS reason of `error` (an OSError such as ENOSPC, EROFS, EIO, EACCES).
    Its text is one line: the file, the reason with its errno name, and `fix` (what to do; `utils.run.Run` fills it
    with the last good checkpoint when empty). An OSError, so code that catches OSError still does."""

    def __init__(self, path: str | Path, error: OSError, fix: str = ""):
        code, text = error.errno, str(error).strip()
        if code is None:  # an encoder's error (imageio: "Broken pipe ... ffmpeg: No space left on device")
            code = next((c for c in REASONS if os.strerror(c) in text), None)
        reason = error.strerror or (os.strerror(code) if code else (text.splitlines() or [type(error).__name__])[0])
        super().__init__(code, reason, str(path))
        self.path, self.fix = Path(path), fix

    def __str__(self) -> str:
        name = errnos.errorcode.get(self.errno or 0)
        return f"could not write {self.path}: {self.strerror}{f' ({name})' if name else ''}" + (
            f"; {self.fix}" if self.fix else ""
        )

    def __reduce__(self):  # an OSError's pickle would rebuild it from (errno, strerror, filename)
        return type(self), (self.path, OSError(self.errno, self.strerror), self.fix)


@contextlib.contextmanager
def writing(path: str | Path, tmp: str | Path | None = None, fix: str = "") -> Iterator[None]:
    """Runs the block that writes `path`. Whatever stops it (an OSError, any other error, Ctrl-C), `tmp` (the
    temporary file the block writes first, if any) is removed, so a failed write leaves nothing behind; an OSError
    becomes WriteFailed(path, error, fix), a WriteFailed from an inner `writing` passes (given `fix` if it had none).

    Raises:
        WriteFailed: the block raised an OSError."""
    try:
        yield
    except BaseException as e:
        _remove(tmp)
        if isinstance(e, OSError) and not isinstance(e, WriteFailed):
            raise WriteFailed(path, e, fix) from e
        if isinstance(e, WriteFailed) and not e.fix:
            e.fix = fix
        raise


def _remove(tmp: str | Path | None) -> None:
    if tmp is not None:
        with contextlib.suppress(OSError):
            Path(tmp).unlink(missing_ok=True)


def write_text_atomic(path: str | Path, text: str, fix: str = "") -> None:
    """Writes `text` to `path` through `<path>.tmp` and os.replace: readers see the old file or the new one, never
    half of one, and a failed write leaves the old file (if any) and no .tmp.

    Raises:
        WriteFailed: the file could not be written (no space, read-only, ...)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with writing(path, tmp, fix):
        tmp.write_text(text)
        os.replace(tmp, path)


def _full(path: Path) -> bool:
    """Whether the file system of `path` (or of its nearest existing parent) has no free block left for this user."""
    while not path.exists() and path != path.parent:
        path = path.parent
    fs = os.statvfs(path)
    return (fs.f_bfree if os.geteuid() == 0 else fs.f_bavail) == 0


def _mp4_whole(path: Path) -> bool:
    """Whether `path` is an mp4 whose top-level boxes all fit in the file and include the index (moov), which ffmpeg
    writes last: a video cut short lacks it."""
    size, at, seen = path.stat().st_size, 0, set()
    with path.open("rb") as f:
        while at + 8 <= size:
            f.seek(at)
            length, kind = int.from_bytes(f.read(4), "big"), f.read(4)
            if length == 1:
                length = int.from_bytes(f.read(8), "big")
            if length < 8 or at + length > size:
                return length == 0 and b"moov" in seen  # 0: the last box runs to the end of the file
            seen.add(kind)
            at += length
    return at == size and b"moov" in seen


@contextlib.contextmanager
def writing_video(path: str | Path | None) -> Iterator[None]:
    """`writing` for an mp4 that an encoder process writes (imageio's ffmpeg): its failure reaches Python as "Broken
    pipe", or not at all (the writer's close() ignores it), so the video is checked for its index afterwards; one
    cut short on a file system left without a free block failed for lack of space (ENOSPC). A failed video is
    removed. `path` None: nothing to write.

    Raises:
        WriteFailed: the block raised an OSError, or left a video without its index."""
    if path is None:
        yield
        return
    path = Path(path)
    with writing(path, path):
        try:
            yield
        except OSError as e:
            if _full(path):
                raise OSError(errnos.ENOSPC, os.strerror(errnos.ENOSPC)) from e
            raise
        if path.is_file() and not _mp4_whole(path):
            if _full(path):
                raise OSError(errnos.ENOSPC, os.strerror(errnos.ENOSPC))
            raise OSError(errnos.EIO, "the encoder left the video unfinished")
