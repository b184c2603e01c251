"""Safe extraction of model archives: regular files and folders only, no absolute path or `..`, size caps."""

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


def _check(member: tarfile.TarInfo) -> None:
    name = member.name
    path = PurePosixPath(name)
    if name.startswith(("/", "\\")) or path.is_absolute() or (len(name) > 1 and name[1] == ":"):
        raise UnsafeArchiveError(f"The archive member {name!r} has an absolute path.")
    if ".." in path.parts or ".." in PurePosixPath(name.replace("\\", "/")).parts:
        raise UnsafeArchiveError(f"The archive member {name!r} escapes the target with '..'.")
    # A model artifact needs no links, and no text check of a link's target is safe (CVE-2025-4517:
    # past PATH_MAX, realpath stops resolving, so filter="data" passes links that climb out).
    if member.issym() or member.islnk():
        raise UnsafeArchiveError(
            f"The archive member {name!r} is a link (to {member.linkname!r}); model archives hold files only."
        )
    if not (member.isfile() or member.isdir()):
        raise UnsafeArchiveError(f"The archive member {name!r} is a device or pipe, not a file.")


def _checked_members(tar: tarfile.TarFile, *, max_members: int, max_bytes: int) -> list[tarfile.TarInfo]:
    members: list[tarfile.TarInfo] = []
    total = 0
    for member in tar:  # streamed: a huge archive is refused before all its headers are read
        if len(members) >= max_members:
            raise UnsafeArchiveError(f"The archive has more than {max_members:,} members.")
        _check(member)
        total += max(member.size, 0)
        if total > max_bytes:
            raise UnsafeArchiveError(f"The archive would extract to more than {max_bytes / 1024**3:g} GiB.")
        members.append(member)
    return members


def check_archive(archive: Path, *, max_members: int = MAX_MEMBERS, max_bytes: int = MAX_BYTES) -> int:
    """Every member's safety, the member count and the total size; returns the number of members."""
    try:
        with tarfile.open(archive) as tar:
            return len(_checked_members(tar, max_members=max_members, max_bytes=max_bytes))
    except (tarfile.TarError, OSError, EOFError) as error:
        raise UnsafeArchiveError(f"{archive.name} is not a readable .tar.gz archive ({error}).") from None


def extract_archive(
    archive: Path, target: Path, *, max_members: int = MAX_MEMBERS, max_bytes: int = MAX_BYTES
) -> Path:
    """Checks the whole archive, then extracts it into `target` (replaced), all or nothing."""
    staging: Path | None = None
    try:
        # One open file for the check and the extraction: what is extracted is what was checked.
        with tarfile.open(archive) as tar:
            members = _checked_members(tar, max_members=max_members, max_bytes=max_bytes)
            target.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
            # The data filter (Python ≥ 3.11.4) checks again while extracting, and drops unsafe modes.
            safety = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(staging, members=members, **safety)  # type: ignore[arg-type]
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    except (tarfile.TarError, OSError, EOFError) as error:
        problem = "is not a readable .tar.gz archive" if staging is None else "cannot be extracted"
        raise UnsafeArchiveError(f"{archive.name} {problem} ({error}).") from None
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    return target
