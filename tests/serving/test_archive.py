"""Safe extraction of model archives (PRODUCT.md §15.2): every refusal, and nothing left behind by one."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from tt_serve.archive import MAX_BYTES, MAX_MEMBERS, UnsafeArchiveError, extract_archive

Member = Callable[[tarfile.TarFile], None]


def _file(name: str, data: bytes = b"x") -> Member:
    def add(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))

    return add


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> Member:
    def add(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo(name)
        info.type = kind
        info.linkname = target
        tar.addfile(info)

    return add


def _archive(path: Path, *members: Member, mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as tar:  # type: ignore[call-overload]
        for add in members:
            add(tar)
    return path


def test_the_caps_are_the_products() -> None:
    assert MAX_MEMBERS == 20_000 and MAX_BYTES == 20 * 1024**3


def test_a_model_archive_extracts_at_the_target(tmp_path: Path) -> None:
    archive = _archive(
        tmp_path / "model.tar.gz",
        _file("adapter_config.json", b"{}"),
        _file("./sub/a.txt", b"a"),
        _link("sub/alias", "a.txt"),
        _link("root-alias", "sub/a.txt"),
        _link("hard", "adapter_config.json", tarfile.LNKTYPE),
    )
    target = tmp_path / "out" / "model"
    target.mkdir(parents=True)
    (target / "stale.txt").write_text("from an earlier extraction")
    assert extract_archive(archive, target) == target
    assert (target / "adapter_config.json").read_text() == "{}"
    assert (target / "sub" / "alias").read_text() == "a" and (target / "root-alias").read_text() == "a"
    assert (target / "hard").read_text() == "{}"
    assert not (target / "stale.txt").exists()  # the target is replaced, not merged
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["model"]  # no staging left


@pytest.mark.parametrize(
    ("members", "reason"),
    [
        ([_file("/etc/evil")], "absolute path"),
        ([_file("../evil")], "'..'"),
        ([_file("model/../../evil")], "'..'"),
        ([_file("ok"), _link("escape", "/etc/passwd")], "outside the target"),
        ([_link("sub/escape", "../../outside")], "outside the target"),
        ([_link("up", "..")], "outside the target"),
        ([_link("hard", "../outside", tarfile.LNKTYPE)], "outside the target"),
        ([_link("fifo", "", tarfile.FIFOTYPE)], "device or pipe"),
        ([_link("dev", "", tarfile.CHRTYPE)], "device or pipe"),
    ],
)
def test_unsafe_members_are_refused_and_nothing_is_written(
    tmp_path: Path, members: list[Member], reason: str
) -> None:
    archive = _archive(tmp_path / "evil.tar.gz", _file("adapter_config.json"), *members)
    target = tmp_path / "out" / "model"
    with pytest.raises(UnsafeArchiveError, match=reason):
        extract_archive(archive, target)
    assert not target.exists() and not (tmp_path / "evil").exists() and not (tmp_path / "outside").exists()


def test_more_than_20000_members_is_refused(tmp_path: Path) -> None:
    archive = _archive(
        tmp_path / "many.tar", *[_file(f"f{i}", b"") for i in range(MAX_MEMBERS + 1)], mode="w"
    )
    with pytest.raises(UnsafeArchiveError, match="more than 20,000 members"):
        extract_archive(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    exactly = _archive(tmp_path / "enough.tar", *[_file(f"f{i}", b"") for i in range(100)], mode="w")
    assert len(list(extract_archive(exactly, tmp_path / "ok", max_members=100).iterdir())) == 100


def test_more_than_20_gib_is_refused_from_the_headers(tmp_path: Path) -> None:
    # A header that declares 21 GiB: refused before a single byte of it is read or written.
    info = tarfile.TarInfo("weights.safetensors")
    info.size = 21 * 1024**3
    path = tmp_path / "big.tar"
    path.write_bytes(info.tobuf(format=tarfile.PAX_FORMAT) + b"\0" * 1024)
    with pytest.raises(UnsafeArchiveError, match="more than 20 GiB"):
        extract_archive(path, tmp_path / "out")
    small = _archive(tmp_path / "small.tar.gz", _file("a", b"x" * 600), _file("b", b"x" * 600))
    with pytest.raises(UnsafeArchiveError, match="GiB"):
        extract_archive(small, tmp_path / "out", max_bytes=1000)
    assert not (tmp_path / "out").exists()


def test_a_file_that_is_not_an_archive_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.tar.gz"
    path.write_bytes(b"this is not gzip")
    with pytest.raises(UnsafeArchiveError, match="not a readable"):
        extract_archive(path, tmp_path / "out")
