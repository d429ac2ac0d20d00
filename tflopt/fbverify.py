"""The flatbuffer verifier the TFLite runtime runs before it reads a model, in Python.

``tflite::VerifyModelBuffer`` (flatbuffers' ``Verifier`` over the schema) refuses a file whose
offsets leave the buffer, whose tables, vtables, vectors or strings are misaligned or run past
the end, whose vtable size is odd, or whose tables nest deeper than 64 or number more than a
million. A file it refuses never loads in the interpreter, so tflopt refuses it too (on load)
and never writes one (before the rename). Once a file passes, the generated Python readers
cannot read outside it either, which is what keeps a corrupt input from crashing tflopt.

The table layouts come from the generated reader (tflopt/fbschema.py); union members of a type
the schema does not know are accepted, as the runtime's generated verifier does.
"""
from __future__ import annotations

import struct

from .fbschema import TABLES, UNIONS

MAX_DEPTH = 64          # flatbuffers::Verifier defaults
MAX_TABLES = 1_000_000
MAX_SIZE = 2**31 - 1    # FLATBUFFERS_MAX_BUFFER_SIZE: the >2 GB layout keeps its tables below it

_u32 = struct.Struct("<I").unpack_from
_i32 = struct.Struct("<i").unpack_from
_u16 = struct.Struct("<H").unpack_from
_u8 = struct.Struct("<B").unpack_from


class FlatbufferError(ValueError):
    """The bytes are not a flatbuffer the runtime's verifier accepts (message says where)."""


def _compile():
    """Per table: (slot, code, arg) tuples; codes are ints so the walk compares cheaply."""
    codes = {"scalar": 0, "string": 1, "table": 2, "vscalar": 3, "vstring": 4, "vtable": 5, "union": 6}
    out = {}
    for name, fields in TABLES.items():
        out[name] = tuple((slot, codes[kind], arg) for slot, kind, arg in fields)
    return out


_LAYOUT = _compile()


def verify(data, root_table: str = "Model", collect: list | None = None, identifier: bytes | None = b"TFL3") -> None:
    """Raise FlatbufferError unless ``data`` (bytes, memoryview or mmap) passes the verifier.
    Only the first 2 GiB are addressed: files above it keep their buffers after the tables.
    ``collect``, if a list, receives (position, length, element width) of every vector and
    string verified (the fuzzer's map of where lengths live)."""
    size = min(len(data), MAX_SIZE)
    buf = data

    def fail(where: str, problem: str):
        raise FlatbufferError(f"flatbuffer verifier: {where}: {problem}")

    if size < 8:
        fail("header", f"{size} bytes is too short")
    if identifier is not None and bytes(buf[4:8]) != identifier:
        fail("header", f"file identifier {bytes(buf[4:8])!r} is not {identifier!r}")
    root = _u32(buf, 0)[0]
    if root == 0 or root + 4 > size or root & 3:
        fail("header", f"root table offset {root} is outside the buffer or misaligned")
    layout = _LAYOUT
    unions = UNIONS
    tables_seen = 0
    # (table position, table name, depth); depth counts nested tables as the C++ verifier does.
    stack = [(root, root_table, 1)]
    pop = stack.pop
    push = stack.append
    while stack:
        pos, name, depth = pop()
        tables_seen += 1
        if depth > MAX_DEPTH:
            fail(f"{name} table at byte {pos}", f"tables nest deeper than {MAX_DEPTH}")
        if tables_seen > MAX_TABLES:
            fail(f"{name} table at byte {pos}", f"more than {MAX_TABLES:,} tables")
        if pos & 3 or pos + 4 > size:
            fail(f"{name} table at byte {pos}", "table offset outside the buffer or misaligned")
        vt = pos - _i32(buf, pos)[0]
        if vt < 0 or vt & 1 or vt + 2 > size:
            fail(f"{name} table at byte {pos}", f"vtable at {vt} outside the buffer or misaligned")
        vsize = _u16(buf, vt)[0]
        if vsize & 1 or vt + vsize > size:
            fail(f"{name} table at byte {pos}", f"vtable size {vsize} is odd or runs past the end")
        nslots = (vsize - 4) // 2 if vsize >= 4 else 0
        fields = layout.get(name)
        if not fields or not nslots:
            continue
        vtab = struct.unpack_from(f"<{nslots}H", buf, vt + 4)
        for slot, code, arg in fields:
            if slot >= nslots:
                break
            voff = vtab[slot]
            if not voff:
                continue
            at = pos + voff
            if code == 0:  # scalar: inside the buffer and aligned to its width
                if at + arg > size or at % arg:
                    fail(f"{name} table at byte {pos}", f"field {slot} outside the buffer or misaligned")
                continue
            # Every other kind is a 32-bit offset to the thing itself.
            if at & 3 or at + 4 > size:
                fail(f"{name} table at byte {pos}", f"offset field {slot} outside the buffer or misaligned")
            rel = _u32(buf, at)[0]
            if rel == 0 or rel >= 0x80000000 or at + rel >= size:
                fail(f"{name} table at byte {pos}", f"field {slot} points outside the buffer")
            target = at + rel
            if code == 2:
                push((target, arg, depth + 1))
            elif code == 6:
                tslot = slot - 1
                utype = 0
                if tslot < nslots and vtab[tslot]:
                    utype = _u8(buf, pos + vtab[tslot])[0]
                member = unions[arg].get(utype)
                if member is not None:
                    push((target, member, depth + 1))
            else:
                # Vector or string: 4-byte aligned length, elements inside the buffer.
                if target & 3 or target + 4 > size:
                    fail(f"{name} table at byte {pos}", f"vector of field {slot} outside the buffer or misaligned")
                n = _u32(buf, target)[0]
                width = arg if code == 3 else (1 if code == 1 else 4)
                end = target + 4 + n * width
                if end > size:
                    fail(f"{name} table at byte {pos}",
                         f"vector of field {slot} ({n:,} elements) runs past the end of the buffer")
                if collect is not None:
                    collect.append((target, n, width))
                if code == 1:
                    if end >= size or buf[end] != 0:
                        fail(f"{name} table at byte {pos}", f"string of field {slot} is not 0-terminated")
                elif code == 5 or code == 4:
                    if n:
                        rels = struct.unpack_from(f"<{n}I", buf, target + 4)
                        base = target + 4
                        if code == 5:
                            for i, r in enumerate(rels):
                                push((base + 4 * i + r, arg, depth + 1))
                        else:
                            for i, r in enumerate(rels):
                                _string(buf, base + 4 * i + r, size, fail, f"{name} table at byte {pos}")


def _string(buf, at: int, size: int, fail, where: str) -> None:
    if at & 3 or at + 4 > size:
        fail(where, "string outside the buffer or misaligned")
    n = _u32(buf, at)[0]
    end = at + 4 + n
    if end >= size or buf[end] != 0:
        fail(where, "string runs past the end or is not 0-terminated")
