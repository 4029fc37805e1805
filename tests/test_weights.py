"""The library's file readers: the .weights header (on files written here byte by byte)
and ``cfgsched.load``'s limits."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import cfgsched
from cfgsched import CfgError, NetSchedule, WeightsError, read_weights_header
from cfgsched.weights import seen_is_64bit
from tests.golden import ROOT


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def le32(*values: int) -> bytes:
    return b"".join(v.to_bytes(4, "little", signed=True) for v in values)


def test_v01_has_32bit_seen(tmp_path: Path) -> None:
    # major 0, minor 1, revision 0, seen 0x00012345 = 74565, then a float weight
    data = bytes.fromhex("00000000010000000000000045230100") + b"\x00\x00\x80\x3f"
    h = read_weights_header(write(tmp_path / "old.weights", data))
    assert (h.major, h.minor, h.revision) == (0, 1, 0)
    assert h.seen == 0x12345 and not h.seen_is_64bit and h.header_bytes == 16


def test_v02_has_64bit_seen(tmp_path: Path) -> None:
    # yolov3.weights style: 0.2.0, seen = 500200 iterations * 64 images = 32012800
    seen = 32012800
    data = le32(0, 2, 0) + seen.to_bytes(8, "little") + b"\x00" * 8
    h = read_weights_header(write(tmp_path / "yolov3.weights", data))
    assert (h.major, h.minor, h.revision, h.seen) == (0, 2, 0, seen)
    assert h.seen_is_64bit and h.header_bytes == 20
    # batch=64 subdivisions=16: mini-batch 4, 64 images per iteration -> 500200
    sched = NetSchedule(batch=64, subdivisions=16, mini_batch=4)
    assert h.iteration(sched) == 500200
    # batch=60 subdivisions=16: mini-batch 3, so 48 images per iteration (not cfg batch 60)
    uneven = NetSchedule(batch=60, subdivisions=16, mini_batch=3)
    assert h.iteration(uneven) == 32012800 // 48 == 666933
    # the same weights under batch=32 subdivisions=8 (32 images per iteration): 1000400
    assert h.iteration(NetSchedule(batch=32, subdivisions=8, mini_batch=4)) == 1000400
    # not a multiple: integer division (seen 100 images, 64 per iteration -> 1)
    small = le32(0, 2, 0) + (100).to_bytes(8, "little")
    assert (
        read_weights_header(write(tmp_path / "x.weights", small)).iteration(sched) == 1
    )


def test_seen_above_32_bits(tmp_path: Path) -> None:
    seen = (5 << 32) + 7
    h = read_weights_header(
        write(tmp_path / "big.weights", le32(1, 0, 3) + seen.to_bytes(8, "little"))
    )
    assert h.seen == seen and (h.major, h.minor, h.revision) == (1, 0, 3)


def test_pjreddie_version_rule(tmp_path: Path) -> None:
    # major 1000: 1000*10 + 0 >= 2 -> uint64 in alexeyab/hankai, but pjreddie also wants
    # major < 1000, so it reads a 32-bit seen and the weights start 4 bytes earlier
    data = le32(1000, 0, 0) + (1234).to_bytes(4, "little") + (9).to_bytes(4, "little")
    path = write(tmp_path / "v1000.weights", data)
    pj = read_weights_header(path, fork="pjreddie")
    assert (pj.seen, pj.header_bytes, pj.seen_is_64bit) == (1234, 16, False)
    ab = read_weights_header(path, fork="alexeyab")
    assert (ab.seen, ab.header_bytes, ab.seen_is_64bit) == (1234 + (9 << 32), 20, True)
    assert read_weights_header(path, fork="hankai").seen == ab.seen
    # minor 1000 likewise
    assert not seen_is_64bit(0, 1000, "pjreddie") and seen_is_64bit(0, 1000, "alexeyab")


@given(major=st.integers(0, 2000), minor=st.integers(0, 2000))
def test_version_rule_formula(major: int, minor: int) -> None:
    wide = major * 10 + minor >= 2
    assert seen_is_64bit(major, minor, "alexeyab") == wide
    assert seen_is_64bit(major, minor, "hankai") == wide
    assert seen_is_64bit(major, minor, "pjreddie") == (
        wide and major < 1000 and minor < 1000
    )


@pytest.mark.parametrize(
    ("fork", "seen"),
    [
        ("alexeyab", 2**32 - 5),  # uint32_t iseen: zero-extended
        ("hankai", 2**32 - 5),
        ("pjreddie", 2**64 - 5),  # int iseen into size_t: sign-extended
    ],
)
def test_narrow_seen_with_the_top_bit_set(tmp_path: Path, fork: str, seen: int) -> None:
    """A 0.1 header with seen = 0xFFFFFFFB, read as each fork's loader reads it."""
    path = write(tmp_path / "v01.weights", le32(0, 1, 0) + le32(-5) + bytes(4))
    h = read_weights_header(path, fork=fork)
    assert (h.seen, h.header_bytes, h.seen_is_64bit) == (seen, 16, False)
    assert (
        h.iteration(NetSchedule(batch=64, subdivisions=1, mini_batch=64)) == seen // 64
    )


def test_versions_below_0_2(tmp_path: Path) -> None:
    for major, minor in [(0, 0), (0, 1)]:
        h = read_weights_header(
            write(tmp_path / "v.weights", le32(major, minor, 0) + le32(77))
        )
        assert h.seen == 77 and h.header_bytes == 16


@pytest.mark.parametrize("size", [0, 5, 11, 12, 15])
def test_truncated_v02(tmp_path: Path, size: int) -> None:
    full = le32(0, 2, 0) + (64).to_bytes(8, "little")
    path = write(tmp_path / "cut.weights", full[:size])
    with pytest.raises(WeightsError, match=r"cut\.weights.*truncated"):
        read_weights_header(path)


def test_truncated_v01_and_v02_at_16_bytes(tmp_path: Path) -> None:
    path = write(tmp_path / "v02.weights", le32(0, 2, 0) + le32(64))  # needs 20 bytes
    with pytest.raises(WeightsError, match="needs 20"):
        read_weights_header(path)
    ok = write(tmp_path / "v01.weights", le32(0, 1, 0) + le32(64))
    assert read_weights_header(ok).seen == 64


def test_empty_file(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match=r"empty\.weights.*0 bytes"):
        read_weights_header(write(tmp_path / "empty.weights", b""))


def test_foreign_files(tmp_path: Path) -> None:
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10"
    with pytest.raises(WeightsError, match=r"picture\.png.*not a darknet weights file"):
        read_weights_header(write(tmp_path / "picture.png", png))
    text = b"[net]\nbatch=64\nsubdivisions=16\n"
    with pytest.raises(WeightsError, match="not a darknet weights file"):
        read_weights_header(write(tmp_path / "yolo.cfg", text))
    negative = le32(-1, 2, 0) + bytes(8)
    with pytest.raises(WeightsError, match="not a darknet weights file"):
        read_weights_header(write(tmp_path / "neg.weights", negative))


def test_missing_and_directory(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match=r"nothere\.weights.*no such"):
        read_weights_header(tmp_path / "nothere.weights")
    with pytest.raises(WeightsError, match=str(tmp_path.name)):
        read_weights_header(tmp_path)


def test_unknown_fork(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="fork"):
        read_weights_header(
            write(tmp_path / "a.weights", le32(0, 2, 0) + bytes(8)), fork="x"
        )


def test_weights_error_is_value_error() -> None:
    assert issubclass(WeightsError, ValueError)


# ----------------------------------------------------------------------------- load()


def load_in_subprocess(path: Path) -> subprocess.CompletedProcess[str]:
    """``cfgsched.load(path)`` in a child with 1 GiB of address space and a time guard,
    so an unbounded read fails there instead of hanging or exhausting this machine."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    code = f"import cfgsched\ncfgsched.load({str(path)!r})\n"
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,  # a guard against a hang, not a speed target
        preexec_fn=limit,
        check=False,
    )


@pytest.mark.parametrize("kind", ["fifo", "/dev/zero"])
def test_load_refuses_what_is_not_a_regular_file(tmp_path: Path, kind: str) -> None:
    path = Path(kind)
    if kind == "fifo":
        path = tmp_path / "cfg.fifo"
        os.mkfifo(path)  # nobody writes: reading it would block for ever
    res = load_in_subprocess(path)
    assert res.returncode == 1
    assert res.stderr.strip().splitlines()[-1] == (
        f"OSError: [Errno 0] not a regular file: cfgsched reads regular files"
        f" (or - for stdin): '{path}'"
    )


def test_load_refuses_a_file_over_4_mib_and_nul_bytes(tmp_path: Path) -> None:
    big = tmp_path / "big.cfg"
    big.write_bytes(b"[net]\n" + b"#" * (4 << 20))
    with pytest.raises(CfgError, match="file larger than 4194304 bytes: not a cfg"):
        cfgsched.load(big)
    nul = tmp_path / "nul.cfg"
    nul.write_bytes(b"[net]\nbatch=64\n\0")
    with pytest.raises(CfgError, match=r"nul.cfg:3: NUL byte"):
        cfgsched.load(nul)


@pytest.mark.parametrize("arg", [123, b"yolov4.cfg", None, 1.5])
def test_load_refuses_what_is_not_a_path(arg: object) -> None:
    """``load(123)`` would open file descriptor 123: refused, naming the type."""
    with pytest.raises(TypeError, match=f"a path .* got {type(arg).__name__}"):
        cfgsched.load(arg)  # type: ignore[arg-type]


def test_load_reads_a_path_or_str() -> None:
    cfg = ROOT / "sample_cfgs" / "yolov4.cfg"
    assert cfgsched.load(cfg) == cfgsched.load(str(cfg))
    assert cfgsched.load(cfg).max_batches == 500_500
