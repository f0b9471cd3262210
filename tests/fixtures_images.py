"""Hostile image files for the input tests."""

import struct
import zlib
from pathlib import Path


def write_png_header(path: Path, width: int, height: int) -> Path:
    """A tiny PNG (about 60 bytes) whose header claims width x height pixels: a decompression bomb
    as far as any reader that trusts the header is concerned."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b""))
                     + chunk(b"IEND", b""))
    return path
