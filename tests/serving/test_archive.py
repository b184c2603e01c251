"""Safe extraction of model archives (PRODUCT.md §15.2): every refusal, and nothing left behind by one."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from tt_serve.archive import MAX_BYTES, MAX_MEMBERS, UnsafeArchiveError, check_archive, extract_archive

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


def _dir(name: str) -> Member:
    def add(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo(name)
        info.type = tarfile.DIRTYPE
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
        _dir("empty"),
    )
    target = tmp_path / "out" / "model"
    target.mkdir(parents=True)
    (target / "stale.txt").write_text("from an earlier extraction")
    assert extract_archive(archive, target) == target
    assert (target / "adapter_config.json").read_text() == "{}"
    assert (target / "sub" / "a.txt").read_text() == "a" and (target / "empty").is_dir()
    assert not (target / "stale.txt").exists()  # the target is replaced, not merged
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["model"]  # no staging left


def _cve_2025_4517(outside: Path) -> list[Member]:
    """CVE-2025-4517: 16 links to 247-character folders push the real path past PATH_MAX, where
    os.path.realpath (and so filter="data") stops resolving; a link then climbs out by text alone."""
    folder, steps, members, path = "d" * 247, "abcdefghijklmnop", [], ""
    for step in steps:
        members += [_dir(f"{path}{folder}"), _link(f"{path}{step}", folder)]
        path += f"{folder}/"
    linkpath = "/".join(steps) + "/" + "l" * 254
    members.append(_link(linkpath, "../" * len(steps)))
    members.append(_link("escape", linkpath + "/.." * 17 + str(outside)))
    return [*members, _file("escape/pwned", b"owned")]


LIMITS = {"max_members": 50, "max_bytes": 4096}  # the caps scaled down, so the archives stay tiny
# Every archive an attacker might craft; `outside` is the folder an escape would write into.
CRAFTED: dict[str, Callable[[Path], list[Member]]] = {
    "cve-2025-4517": _cve_2025_4517,
    "dotdot": lambda outside: [_file("../outside/pwned")],
    "nested-dotdot": lambda outside: [_file("model/../../outside/pwned")],
    "absolute": lambda outside: [_file(str(outside / "pwned"))],
    "backslash-dotdot": lambda outside: [_file("..\\outside\\pwned")],
    "backslash-absolute": lambda outside: [_file("\\outside\\pwned")],
    "drive-letter": lambda outside: [_file("C:/outside/pwned")],
    "symlink-up": lambda outside: [_link("sub/escape", "../../outside"), _file("sub/escape/pwned")],
    "symlink-absolute": lambda outside: [_link("escape", str(outside)), _file("escape/pwned")],
    # Each link is inside by text; together they climb out: a/b is the root, so a/b/.. is its parent.
    "symlink-chain": lambda outside: [_link("a/b", ".."), _link("c", "a/b/../outside"), _file("c/pwned")],
    "symlink-inside": lambda outside: [_link("alias", "adapter_config.json")],
    "symlink-then-file": lambda outside: [_file("x"), _link("x", str(outside / "pwned"))],
    "hardlink-inside": lambda outside: [_link("hard", "adapter_config.json", tarfile.LNKTYPE)],
    "hardlink-up": lambda outside: [_link("hard", "../outside/secret", tarfile.LNKTYPE)],
    "hardlink-absolute": lambda outside: [_link("hard", str(outside / "secret"), tarfile.LNKTYPE)],
    "char-device": lambda outside: [_link("dev", "", tarfile.CHRTYPE)],
    "block-device": lambda outside: [_link("disk", "", tarfile.BLKTYPE)],
    "fifo": lambda outside: [_link("fifo", "", tarfile.FIFOTYPE)],
    "too-many-members": lambda outside: [_file(f"f{i}", b"") for i in range(LIMITS["max_members"] + 1)],
    "too-big": lambda outside: [_file("weights.safetensors", b"x" * (LIMITS["max_bytes"] + 1))],
}


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}  # rglob does not follow links


def crafted_archive(tmp_path: Path, case: str) -> Path:
    """The crafted archive `case` in tmp_path/evil.tar.gz; tmp_path/outside holds a secret to protect."""
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret").write_text("keep")
    members = [_file("adapter_config.json", b"{}"), *CRAFTED[case](tmp_path / "outside")]
    return _archive(tmp_path / "evil.tar.gz", *members)


@pytest.mark.parametrize("case", CRAFTED)
def test_crafted_archives_are_refused_and_nothing_is_written(tmp_path: Path, case: str) -> None:
    archive = crafted_archive(tmp_path, case)
    before = _tree(tmp_path)
    target = tmp_path / "out" / "model"
    with pytest.raises(UnsafeArchiveError):
        extract_archive(archive, target, **LIMITS)
    assert _tree(tmp_path) == before  # no target, no staging folder, nothing outside
    assert (tmp_path / "outside" / "secret").read_text() == "keep"


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("absolute", "absolute path"),
        ("dotdot", "'..'"),
        ("symlink-inside", "is a link"),
        ("hardlink-up", "is a link"),
        ("fifo", "device or pipe"),
        ("too-many-members", "more than 50 members"),
        ("too-big", "would extract to more than"),
    ],
)
def test_refusals_say_why(tmp_path: Path, case: str, reason: str) -> None:
    with pytest.raises(UnsafeArchiveError, match=reason):
        check_archive(crafted_archive(tmp_path, case), **LIMITS)


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


# All but the scaled-down caps (the product's own apply there) also go through the command and the playground.
THROUGH_THE_PRODUCT = [case for case in CRAFTED if case not in ("too-many-members", "too-big")]


@pytest.mark.parametrize("case", THROUGH_THE_PRODUCT)
def test_tt_models_serve_refuses_crafted_archives(
    tmp_path: Path, case: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tt_cli.main import main

    archive = crafted_archive(tmp_path, case)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "outside" / "config"))
    before = _tree(tmp_path)
    code = main(["models", "serve", str(archive), "--cache-dir", str(tmp_path / "cache")])
    assert code == 1 and "The archive member" in capsys.readouterr().err
    assert _tree(tmp_path) == before  # nothing extracted, nothing written outside
