"""Safe extraction of model archives: no absolute paths, no `..`, no links out of the target, size caps."""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from pathlib import Path, PurePosixPath

MAX_MEMBERS = 20_000
MAX_BYTES = 20 * 1024**3  # 20 GiB


class UnsafeArchiveError(Exception):
    """The archive is refused (or unreadable); nothing was extracted."""


def _inside(root: PurePosixPath, path: PurePosixPath) -> bool:
    """`path` (relative, already normalised) stays under `root` (relative)."""
    parts: list[str] = []
    for part in (*root.parts, *path.parts):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                return False
            parts.pop()
        else:
            parts.append(part)
    return True


def _check(member: tarfile.TarInfo) -> None:
    name = member.name
    path = PurePosixPath(name)
    if name.startswith(("/", "\\")) or path.is_absolute() or (len(name) > 1 and name[1] == ":"):
        raise UnsafeArchiveError(f"The archive member {name!r} has an absolute path.")
    if ".." in path.parts or ".." in PurePosixPath(name.replace("\\", "/")).parts:
        raise UnsafeArchiveError(f"The archive member {name!r} escapes the target with '..'.")
    if member.issym():
        link = PurePosixPath(member.linkname)
        if link.is_absolute() or not _inside(path.parent, link):
            raise UnsafeArchiveError(
                f"The archive member {name!r} links to {member.linkname!r}, outside the target."
            )
    elif member.islnk():
        link = PurePosixPath(member.linkname)
        if link.is_absolute() or not _inside(PurePosixPath(), link):
            raise UnsafeArchiveError(
                f"The archive member {name!r} links to {member.linkname!r}, outside the target."
            )
    elif not (member.isfile() or member.isdir()):
        raise UnsafeArchiveError(f"The archive member {name!r} is a device or pipe, not a file.")


def check_archive(archive: Path, *, max_members: int = MAX_MEMBERS, max_bytes: int = MAX_BYTES) -> int:
    """Every member's safety, the member count and the total size; returns the number of members."""
    count = total = 0
    try:
        with tarfile.open(archive) as tar:
            for member in tar:  # streamed: a huge archive is refused before all its headers are read
                count += 1
                if count > max_members:
                    raise UnsafeArchiveError(f"The archive has more than {max_members:,} members.")
                _check(member)
                total += max(member.size, 0)
                if total > max_bytes:
                    raise UnsafeArchiveError(
                        f"The archive would extract to more than {max_bytes / 1024**3:g} GiB."
                    )
    except (tarfile.TarError, OSError, EOFError) as error:
        raise UnsafeArchiveError(f"{archive.name} is not a readable .tar.gz archive ({error}).") from None
    return count


def extract_archive(
    archive: Path, target: Path, *, max_members: int = MAX_MEMBERS, max_bytes: int = MAX_BYTES
) -> Path:
    """Checks the whole archive, then extracts it into `target` (replaced), all or nothing."""
    check_archive(archive, max_members=max_members, max_bytes=max_bytes)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        with tarfile.open(archive) as tar:
            # The data filter checks again while extracting (and drops modes that would be unsafe).
            tar.extractall(staging, filter="data")
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    except (tarfile.TarError, OSError, EOFError) as error:
        raise UnsafeArchiveError(f"{archive.name} cannot be extracted ({error}).") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
