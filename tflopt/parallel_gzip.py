"""One gzip stream compressed on every core, pigz-style, with the standard library's zlib.

The input is cut into fixed blocks; each block is deflated in a worker thread (zlib releases
the GIL) primed with the previous block's last 32 KB as its dictionary and ended by a sync
flush, so the blocks concatenate into one valid deflate stream. The figure stays that of
``gzip.compress`` at the same level: a sync marker (5 bytes) per block and matches lost
across block ends at most; an input of one block gives exactly the one-shot bytes.
Faster deflaters were measured and left out (benchmarks/bench_size.py): zlib-ng and ISA-L
are 2-20x quicker but their levels are other trade-offs (zlib-ng -6 ranges -1.7%..+5.4%
of zlib -6 on the fixtures), so their byte counts are not `gzip -N`'s.
"""
from __future__ import annotations

import struct
import zlib
from collections import deque
from concurrent.futures import ThreadPoolExecutor

from .runtime import cores

# 1 MiB blocks: the flush and the dictionary restart cost well under 0.1% (pigz uses 128 KiB).
BLOCK = 1 << 20
_WINDOW = 32 << 10


def _deflate(block: bytes, zdict: bytes | None, level: int, last: bool) -> bytes:
    c = (zlib.compressobj(level, zlib.DEFLATED, -15, zdict=zdict) if zdict
         else zlib.compressobj(level, zlib.DEFLATED, -15))
    return c.compress(block) + c.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)


class ParallelGzip:
    """Feed with ``write``; the gzip stream goes to ``out`` (a callable taking bytes, or None
    to only count it in ``bytes``) in order, a block at a time; ``close`` ends it. Block ends
    depend only on the bytes written, never on how the writes were cut or on the thread
    count, so the stream is deterministic. At most two blocks per worker are in flight (a few
    MB)."""

    def __init__(self, out=None, level: int = 6, threads: int | None = None):
        self._sink, self.level, self.bytes = out, level, 0
        self._threads = threads or cores()
        self._pool: ThreadPoolExecutor | None = None  # started by a second block: small inputs stay inline
        self._pending: deque = deque()
        self._buf = bytearray()
        self._tail: bytes | None = None
        self._crc = self._size = 0
        # zlib's own 10-byte gzip header (mtime 0), as gzip.compress(mtime=0) writes it.
        self._out(zlib.compress(b"", level, wbits=31)[:10])

    def _out(self, b: bytes) -> None:
        self.bytes += len(b)
        if self._sink is not None:
            self._sink(b)

    def write(self, b) -> None:
        view = memoryview(b).cast("B")
        self._crc = zlib.crc32(view, self._crc)
        self._size += len(view)
        pos = 0
        # The last block is held back until close: it is the one ended with Z_FINISH.
        while len(self._buf) + len(view) - pos > BLOCK:
            take = BLOCK - len(self._buf)
            block = bytes(self._buf + view[pos:pos + take]) if self._buf else bytes(view[pos:pos + take])
            self._buf = bytearray()
            pos += take
            self._submit(block, last=False)
        self._buf += view[pos:]

    def _submit(self, block: bytes, last: bool) -> None:
        zdict, self._tail = self._tail, block[-_WINDOW:]
        if self._pool is None and not last and self._threads > 1:
            self._pool = ThreadPoolExecutor(self._threads)
        if self._pool is None:
            self._out(_deflate(block, zdict, self.level, last))
            return
        self._pending.append(self._pool.submit(_deflate, block, zdict, self.level, last))
        while len(self._pending) > 2 * self._threads or (last and self._pending):
            self._out(self._pending.popleft().result())

    def close(self) -> int:
        try:
            self._submit(bytes(self._buf), last=True)
        finally:
            if self._pool is not None:
                self._pool.shutdown(cancel_futures=True)
        self._buf = bytearray()
        self._out(struct.pack("<LL", self._crc, self._size & 0xFFFFFFFF))
        return self.bytes


def gzip_length(data, level: int = 6) -> int:
    """Bytes of the gzip stream of ``data`` (bytes-like), deflated on every core."""
    gz = ParallelGzip(None, level)
    gz.write(data)
    return gz.close()
