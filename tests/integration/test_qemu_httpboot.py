"""The HTTP boot responder QEMU runs per connection: one file from one directory."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from bios_ws.platform.qemu.httpboot import answer


def ask(directory: Path, request: bytes) -> tuple[int, bytes]:
    out = io.BytesIO()
    status = answer(directory, io.BytesIO(request), out)
    return status, out.getvalue()


@pytest.fixture
def web(tmp_path: Path) -> Path:
    root = tmp_path / "web"
    root.mkdir()
    (root / "boot.efi").write_bytes(b"MZ" + bytes(100))
    (root / ".hidden").write_bytes(b"secret")
    (root / "sub").mkdir()
    (tmp_path / "outside.efi").write_bytes(b"outside")
    os.symlink(tmp_path / "outside.efi", root / "link.efi")
    return root


def test_get_serves_the_file_with_its_length(web: Path) -> None:
    status, reply = ask(web, b"GET /boot.efi HTTP/1.1\r\nHost: 10.0.2.100\r\n\r\n")
    head, _, body = reply.partition(b"\r\n\r\n")
    assert status == 200 and head.startswith(b"HTTP/1.1 200 OK")
    assert b"Content-Length: 102" in head and body == b"MZ" + bytes(100)


def test_head_gives_the_length_only(web: Path) -> None:
    status, reply = ask(web, b"HEAD /boot.efi HTTP/1.1\r\n\r\n")
    assert status == 200 and reply.endswith(b"\r\n\r\n") and b"Content-Length: 102" in reply


@pytest.mark.parametrize("path", [b"/", b"/missing.efi", b"/../outside.efi", b"/sub",
                                  b"/sub/x", b"/.hidden", b"/link.efi", b"/%2e%2e/outside.efi"])
def test_nothing_but_regular_files_directly_inside(web: Path, path: bytes) -> None:
    status, reply = ask(web, b"GET " + path + b" HTTP/1.1\r\n\r\n")
    assert status == 404 and b"outside" not in reply and b"secret" not in reply


@pytest.mark.parametrize("request_bytes", [b"", b"POST /boot.efi HTTP/1.1\r\n\r\n",
                                           b"GET\r\n\r\n", b"x" * 20000])
def test_anything_else_is_a_bad_request(web: Path, request_bytes: bytes) -> None:
    assert ask(web, request_bytes)[0] == 400
