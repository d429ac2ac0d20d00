"""Reading and writing .tflite files: inline layout, and the >2 GB layout whose buffer bytes
follow the flatbuffer (Buffer.offset / size)."""
from __future__ import annotations

import mmap
import os
import struct
import tempfile
from pathlib import Path

import flatbuffers
import numpy as np

from .errors import ModelFormatError, WriteCheckError
from .fbverify import FlatbufferError
from .fbverify import verify as verify_flatbuffer
from .model import Buffer, Model
from .schema import fb

IDENTIFIER = b"TFL3"
FLATBUFFER_MAX = 2**31  # flatbuffers addresses with signed 32-bit offsets
BUFFER_LOCATION = "buffer_location"
OUTSIDE = b"outside flatbuffers"
_ALIGN = 16
_PAGE = mmap.PAGESIZE
_CHUNK = 1 << 20  # buffer bytes copied, and their source pages dropped, a MiB at a time


# -- reading ---------------------------------------------------------------------------------
def load(source, *, name: str | None = None, verify: bool = True) -> Model:
    """Load a model from a path or from bytes. Files are memory-mapped: buffer bytes are only
    read when a pass asks for them or the model is written."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source) if not isinstance(source, bytes) else source
        name = name or "<bytes>"
    else:
        path = Path(source)
        name = name or str(path)
        data = _map_file(path, name)
    _check_header(data, name)
    # The runtime's verifier first: what it refuses never loads, and once it passes the
    # generated readers below cannot read outside the file.
    try:
        verify_flatbuffer(data)
    except FlatbufferError as e:
        raise ModelFormatError(name, f"the TFLite runtime would refuse this file ({e})") from None
    try:
        root = fb.Model.GetRootAs(data, 0)
        raw = _unpack_model(root)
        buffers = _read_buffers(root, data, name)
        _inline_large_custom_options(raw, data, name)
        if isinstance(data, mmap.mmap) and hasattr(data, "madvise"):
            # The tables are parsed; drop the pages reading them mapped (a fault can map a
            # whole large folio), buffer bytes come back from the page cache when needed.
            data.madvise(mmap.MADV_DONTNEED)
    except ModelFormatError:
        raise
    except Exception as e:  # the generated readers fail in many ways on corrupt input
        raise ModelFormatError(name, f"corrupt TFLite flatbuffer ({type(e).__name__}: {e})") from None
    model = Model(raw, buffers, source_name=name, source=data)
    if verify:
        from .verify import verify_model
        problems = verify_model(model)
        if problems:
            raise ModelFormatError(name, f"invalid model: {problems[0]}"
                                   + (f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""))
    return model


def _map_file(path: Path, name: str):
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise ModelFormatError(name, "no such file") from None
    except IsADirectoryError:
        raise ModelFormatError(name, "is a directory, not a model file") from None
    except OSError as e:
        raise ModelFormatError(name, f"cannot read ({e.strerror})") from None
    with f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            raise ModelFormatError(name, "file is empty")
        return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)


def _check_header(data, name: str) -> None:
    n = len(data)
    if n < 8:
        raise ModelFormatError(name, f"truncated: {n} bytes is too short for a TFLite model")
    ident = bytes(data[4:8])
    if ident != IDENTIFIER:
        raise ModelFormatError(name, f"not a TFLite model (file identifier {ident!r}, expected {IDENTIFIER!r})")
    root = struct.unpack_from("<I", data, 0)[0]
    if root + 4 > n:
        raise ModelFormatError(name, f"truncated or corrupt: root table at {root} lies past the end ({n} bytes)")


def _table_list(length: int, get, cls):
    out = []
    for i in range(length):
        item = get(i)
        out.append(None if item is None else cls.InitFromObj(item))
    return out


def _unpack_model(model: "fb.Model") -> "fb.ModelT":
    """ModelT without buffers: those are read as Buffer views by ``_read_buffers``."""
    m = fb.ModelT()
    m.version = model.Version()
    m.operatorCodes = _table_list(model.OperatorCodesLength(), model.OperatorCodes, fb.OperatorCodeT)
    m.subgraphs = _table_list(model.SubgraphsLength(), model.Subgraphs, fb.SubGraphT)
    m.description = model.Description()
    if not model.MetadataBufferIsNone():
        m.metadataBuffer = [int(x) for x in model.MetadataBufferAsNumpy()]
    m.metadata = _table_list(model.MetadataLength(), model.Metadata, fb.MetadataT)
    m.signatureDefs = _table_list(model.SignatureDefsLength(), model.SignatureDefs, fb.SignatureDefT)
    if not model.ExternalBufferGroupsIsNone():
        m.externalBufferGroups = _table_list(model.ExternalBufferGroupsLength(), model.ExternalBufferGroups,
                                             fb.ExternalBufferGroupT)
    if not model.ExternalBuffersIsNone():
        m.externalBuffers = _table_list(model.ExternalBuffersLength(), model.ExternalBuffers, fb.ExternalBufferT)
    return m


def _read_buffers(model: "fb.Model", data, name: str) -> list[Buffer]:
    n_file = len(data)
    out = []
    for i in range(model.BuffersLength()):
        b = model.Buffers(i)
        tab = b._tab
        o = tab.Offset(4)
        if o:
            start = tab.Vector(o)
            size = tab.VectorLen(o)
            if start + size > n_file:
                raise ModelFormatError(name, f"truncated or corrupt: buffer {i} ({size} bytes at {start}) "
                                             f"runs past the end of the file ({n_file} bytes)")
            out.append(Buffer(source=data, start=start, size=size))
            continue
        offset, size = b.Offset(), b.Size()
        if offset > 1:
            if offset + size > n_file:
                raise ModelFormatError(name, f"truncated: buffer {i} ({size} bytes at offset {offset}) "
                                             f"runs past the end of the file ({n_file} bytes)")
            out.append(Buffer(source=data, start=offset, size=size))
        else:
            out.append(Buffer())
    return out


def _inline_large_custom_options(raw: "fb.ModelT", data, name: str) -> None:
    for sg in raw.subgraphs or []:
        for op in sg.operators or []:
            if op.largeCustomOptionsOffset and op.largeCustomOptionsOffset > 1:
                start, size = op.largeCustomOptionsOffset, op.largeCustomOptionsSize
                if start + size > len(data):
                    raise ModelFormatError(name, "truncated: large custom options run past the end of the file")
                op.customOptions = np.frombuffer(data, np.uint8, size, start).copy()
                op.largeCustomOptionsOffset = 0
                op.largeCustomOptionsSize = 0


# -- writing ---------------------------------------------------------------------------------
def _align(n: int) -> int:
    return (n + _ALIGN - 1) // _ALIGN * _ALIGN


def _external_buffers(model: Model, layout: str) -> set[int]:
    """Indices of buffers written after the flatbuffer; empty for the inline layout."""
    if layout not in ("auto", "inline", "external"):
        raise ValueError(f"layout must be auto, inline or external, not {layout!r}")
    metadata_buffers = {m.buffer for m in model.raw.metadata}
    candidates = {i for i, b in enumerate(model.buffers) if b.nbytes and i not in metadata_buffers}
    if layout == "inline":
        return set()
    if layout == "external":
        return candidates
    total = sum(model.buffers[i].nbytes + _ALIGN for i in candidates)
    # Leave headroom for the tables: the flatbuffer as a whole must stay under 2 GiB.
    return candidates if total > FLATBUFFER_MAX - 2**28 else set()


def _chunks(n: int):
    return ((off, min(n, off + _CHUNK)) for off in range(0, n, _CHUNK))


def _reserve_bytes(builder: flatbuffers.Builder, buf: Buffer, holes: list) -> int:
    """A [ubyte] vector for ``buf``'s bytes, 16-byte aligned as the schema asks, whose bytes
    are left out of the builder: ``holes`` records where they go (their distance from the
    builder's end, which is where they sit in the finished file), and ``_write`` streams them
    from the buffer there. The builder thus holds only the tables, never a copy of the data."""
    n = buf.nbytes
    builder.StartVector(1, n, _ALIGN)
    builder.head = builder.head - n
    holes.append((len(builder.Bytes) - builder.head, buf))
    builder.vectorNumElems = n
    return builder.EndVector()


def _release(buf: Buffer, lo: int = 0, hi: int | None = None) -> None:
    """Drop the source pages of bytes ``lo:hi`` of a buffer already copied (the pages wholly
    inside the buffer up to ``hi``, from the one holding ``lo``), so RSS stays near one copy."""
    span = buf.source_span()
    src = buf._source
    if span is None or not isinstance(src, mmap.mmap) or span[1] < 4 * _PAGE:
        return
    hi = span[1] if hi is None else hi
    first = (span[0] + _PAGE - 1) // _PAGE * _PAGE  # the first page wholly inside the buffer
    start = max(first, (span[0] + lo) // _PAGE * _PAGE)
    end = (span[0] + hi) // _PAGE * _PAGE
    if end > start and hasattr(src, "madvise"):
        src.madvise(mmap.MADV_DONTNEED, start, end - start)


def _pack_buffers(builder, buffers: list[Buffer], external: set[int], holes: list) -> int:
    offsets = []
    for i, buf in enumerate(buffers):
        data = None
        if buf.nbytes and i not in external:
            data = _reserve_bytes(builder, buf, holes)
        fb.BufferStart(builder)
        if data is not None:
            fb.BufferAddData(builder, data)
        if i in external:
            fb.BufferAddOffset(builder, 1)  # placeholders, patched once the layout is known
            fb.BufferAddSize(builder, 1)
        offsets.append(fb.BufferEnd(builder))
    fb.ModelStartBuffersVector(builder, len(offsets))
    for off in reversed(offsets):
        builder.PrependUOffsetTRelative(off)
    return builder.EndVector()


def _pack_tables(builder, items) -> int:
    offs = [it.Pack(builder) for it in items]
    builder.StartVector(4, len(offs), 4)
    for off in reversed(offs):
        builder.PrependUOffsetTRelative(off)
    return builder.EndVector()


def _estimate_size(model: Model, external: set[int]) -> int:
    """An upper bound of the flatbuffer's size. Generous: the builder's memory is anonymous
    and only the pages written cost anything, while outgrowing it would copy it whole."""
    data = sum(b.nbytes + _ALIGN for i, b in enumerate(model.buffers) if i not in external)
    tensors = sum(len(sg.tensors) for sg in model.subgraphs)
    ops = sum(len(sg.operators) for sg in model.subgraphs)
    custom = sum(len(op.raw.customOptions) for op in model.operators() if op.raw.customOptions is not None)
    quant = 0
    for sg in model.subgraphs:
        for t in sg.tensors:
            q = t.raw.quantization
            if q is not None:
                quant += sum(0 if v is None else 8 * len(v) + 16 for v in (q.scale, q.zeroPoint, q.min, q.max))
    tables = 64 * len(model.buffers) + 512 * tensors + 256 * ops + 2 * custom + 2 * quant + 2**16
    return data + 2 * tables + 2**20


def _builder(size: int) -> flatbuffers.Builder:
    """A builder over anonymous memory: the pages of the holes left for buffer bytes are never
    touched, so they cost no memory (a bytearray would be zero-filled, i.e. resident)."""
    builder = flatbuffers.Builder(0)
    builder.Bytes = mmap.mmap(-1, size)
    builder.head = size
    return builder


def _build(model: Model, external: set[int]) -> tuple[flatbuffers.Builder, list]:
    """The finished flatbuffer with holes where inline buffer bytes go, and the holes
    ``[(distance from the end, Buffer)]``."""
    m = model.raw
    buffer_list, metadata_list = _layout_metadata(model, bool(external))
    builder = _builder(min(_estimate_size(model, external), FLATBUFFER_MAX))
    holes: list = []
    # Buffers first: their data sit at the end of the file, after the tables, as the converter
    # lays them out.
    buffers = _pack_buffers(builder, buffer_list, external, holes)
    opcodes = _pack_tables(builder, m.operatorCodes)
    subgraphs = _pack_tables(builder, m.subgraphs)
    description = builder.CreateString(m.description) if m.description is not None else None
    metadata_buffer = None
    if m.metadataBuffer is not None:
        metadata_buffer = builder.CreateNumpyVector(np.asarray(m.metadataBuffer, np.int32))
    metadata = _pack_tables(builder, metadata_list) if metadata_list else None
    signatures = _pack_tables(builder, m.signatureDefs) if m.signatureDefs else None
    ext_groups = _pack_tables(builder, m.externalBufferGroups) if m.externalBufferGroups is not None else None
    ext_bufs = _pack_tables(builder, m.externalBuffers) if m.externalBuffers is not None else None
    fb.ModelStart(builder)
    fb.ModelAddVersion(builder, m.version)
    fb.ModelAddOperatorCodes(builder, opcodes)
    fb.ModelAddSubgraphs(builder, subgraphs)
    if description is not None:
        fb.ModelAddDescription(builder, description)
    fb.ModelAddBuffers(builder, buffers)
    if metadata_buffer is not None:
        fb.ModelAddMetadataBuffer(builder, metadata_buffer)
    if metadata is not None:
        fb.ModelAddMetadata(builder, metadata)
    if signatures is not None:
        fb.ModelAddSignatureDefs(builder, signatures)
    if ext_groups is not None:
        fb.ModelAddExternalBufferGroups(builder, ext_groups)
    if ext_bufs is not None:
        fb.ModelAddExternalBuffers(builder, ext_bufs)
    builder.Finish(fb.ModelEnd(builder), file_identifier=IDENTIFIER)
    return builder, holes


def _layout_metadata(model: Model, external: bool) -> tuple[list[Buffer], list]:
    """Buffers and metadata to write: the converter marks the appended layout with a
    ``buffer_location`` entry, and a stale one would make BuildFromModel refuse an inline model.
    The model itself is left as it is."""
    metadata = [md for md in model.raw.metadata if md.name not in (BUFFER_LOCATION, BUFFER_LOCATION.encode())]
    buffers = model.buffers
    if external:
        md = fb.MetadataT()
        md.name = BUFFER_LOCATION
        md.buffer = len(buffers)
        buffers = buffers + [Buffer(np.frombuffer(OUTSIDE, np.uint8))]
        metadata.append(md)
    return buffers, metadata


def _layout_payloads(fbuf: memoryview, model: Model, external: set[int]) -> list[tuple[int, Buffer]]:
    """Patch offset/size of external buffers in the finished flatbuffer; returns the payloads
    with their file offsets, each 16-byte aligned after the flatbuffer."""
    root = fb.Model.GetRootAs(fbuf, 0)
    pos = _align(len(fbuf))
    placed = []
    for i in sorted(external):
        buf = model.buffers[i]
        tab = root.Buffers(i)._tab
        struct.pack_into("<Q", fbuf, tab.Pos + tab.Offset(6), pos)
        struct.pack_into("<Q", fbuf, tab.Pos + tab.Offset(8), buf.nbytes)
        placed.append((pos, buf))
        pos = _align(pos + buf.nbytes)
    return placed


def _write_buffer(out, buf: Buffer) -> None:
    """Stream one buffer's bytes a chunk at a time, dropping source pages once written; a
    deferred buffer (``Buffer.deferred``) is computed here, one at a time, and not kept."""
    mv = buf.write_view()
    for lo, hi in _chunks(len(mv)):
        out.write(mv[lo:hi])
        _release(buf, lo, hi)
    mv.release()


def _write(model: Model, out, layout: str) -> int:
    """Write the file through ``out.write`` (tables from the builder, buffer bytes streamed
    from their sources); returns the number of bytes written."""
    external = _external_buffers(model, layout)
    builder, holes = _build(model, external)
    try:
        fbuf = memoryview(builder.Bytes)[builder.Head():]
        placed = _layout_payloads(fbuf, model, external) if external else []
        end = len(fbuf)
        written = 0
        for dist, buf in sorted(holes, key=lambda h: -h[0]):
            start = end - dist
            out.write(fbuf[written:start])
            _write_buffer(out, buf)
            written = start + buf.nbytes
        out.write(fbuf[written:])
        written = end
        for pos, buf in placed:
            out.write(b"\0" * (pos - written))
            _write_buffer(out, buf)
            written = pos + buf.nbytes
        if external:
            # The converter ends with 16 zero bytes so XNNPack may read past the last payload.
            end = _align(written) + _ALIGN
            out.write(b"\0" * (end - written))
            written = end
        fbuf.release()
        return written
    finally:
        _close(builder)


def _close(builder) -> None:
    if isinstance(builder.Bytes, mmap.mmap):
        try:
            builder.Bytes.close()
        except BufferError:  # a view still exported (an exception mid-write); GC unmaps it
            pass


def serialized_size(model: Model, *, layout: str = "auto") -> int:
    """``len(model.to_bytes(layout=layout))`` without the bytes: the tables are built (the
    holes for buffer bytes cost nothing) and the payload sizes added up."""
    external = _external_buffers(model, layout)
    builder, _ = _build(model, external)
    try:
        n = len(builder.Bytes) - builder.Head()
        if not external:
            return n
        pos = _align(n)
        for i in sorted(external):
            pos = _align(pos + model.buffers[i].nbytes)
        return pos + _ALIGN
    finally:
        _close(builder)


class _Sink:
    def __init__(self):
        self.parts: list[bytes] = []

    def write(self, b) -> None:
        self.parts.append(bytes(b))


def serialize(model: Model, *, layout: str = "auto") -> bytes:
    sink = _Sink()
    _write(model, sink, layout)
    return b"".join(sink.parts)


def stream(model: Model, sink, *, layout: str = "auto") -> int:
    """Write the serialised model through ``sink.write`` chunk by chunk (never the whole file
    at once); returns the byte count."""
    return _write(model, sink, layout)


def atomic_write(path, write, check=None) -> None:
    """Write through ``write(fileobj)`` to a temp file beside ``path``, then rename over it;
    ``check(temp_path)``, if given, runs on the finished temp file first and may raise to
    leave ``path`` untouched."""
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        # mkstemp makes the file 0600; give OUT the mode a plain open() would (or keep the
        # mode of the file it replaces).
        try:
            mode = os.stat(path).st_mode & 0o7777
        except OSError:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            write(f)
        if check is not None:
            check(tmp)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def verify_written(path, name=None) -> None:
    """Refuse a file tflopt wrote that the runtime's flatbuffer verifier would reject (a bug
    in tflopt or a pass, never the user's): WriteCheckError, and the caller writes nothing."""
    with open(path, "rb") as f:
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            try:
                verify_flatbuffer(data)
            except FlatbufferError as e:
                raise WriteCheckError(f"{name or path}: not written: the output fails the TFLite "
                                      f"flatbuffer verifier ({e})") from None


def save(model: Model, path, *, layout: str = "auto", check=None) -> None:
    """Write atomically; the flatbuffer verifier runs on the written bytes before the rename,
    then ``check(temp_path)`` if given (``tflopt.check`` loads it in the interpreter)."""
    def checks(tmp):
        verify_written(tmp, path)
        if check is not None:
            check(tmp)
    atomic_write(path, lambda f: _write(model, f, layout), checks)
