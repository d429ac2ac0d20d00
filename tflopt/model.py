"""The model IR: a typed view over the schema's object API that passes read and edit.

Tables (subgraphs, tensors, operators, options) are the generated ``*T`` objects, so every
field round-trips. Buffers are tflopt's own: their bytes stay in the source file (mmap or
bytes) until a pass replaces them, so loading a 2 GB model costs almost no memory.
"""
from __future__ import annotations

import copy
from typing import Iterable, Iterator

import numpy as np

from . import schema
from .schema import TensorType, fb


class Buffer:
    """Constant bytes of one ``Model.buffers`` entry; lazily a view of the source file, or
    deferred: computed from other bytes when first needed (see ``deferred``)."""

    __slots__ = ("_source", "_start", "_size", "_array", "_make")

    def __init__(self, data=None, *, source=None, start: int = 0, size: int = 0):
        self._source = source
        self._start = start
        self._size = size
        self._array: np.ndarray | None = None
        self._make = None
        if data is not None:
            self.set(data)

    @classmethod
    def deferred(cls, make, nbytes: int) -> "Buffer":
        """Bytes that ``make()`` computes (an array of exactly ``nbytes`` bytes) only when
        asked: a pass that rewrites every large weight (float16, dynamic int8) records how,
        and the writer computes one buffer at a time while streaming the file, so the
        rewritten model is never held whole in memory. A pass reading ``data`` computes and
        keeps it, as for any replaced buffer."""
        b = cls()
        b._make = make
        b._size = int(nbytes)
        return b

    def _compute(self) -> np.ndarray:
        arr = np.ascontiguousarray(self._make()).reshape(-1).view(np.uint8)
        if arr.size != self._size:
            raise ValueError(f"deferred buffer computed {arr.size} bytes, {self._size} were announced")
        return arr

    @property
    def nbytes(self) -> int:
        return self._array.size if self._array is not None else self._size

    def __len__(self) -> int:
        return self.nbytes

    @property
    def modified(self) -> bool:
        return self._array is not None or self._make is not None

    @property
    def data(self) -> np.ndarray:
        """The bytes as a read-only uint8 array (a view of the source until replaced)."""
        if self._array is None and self._make is not None:
            self.set(self._compute())
        if self._array is not None:
            return self._array
        if self._size == 0:
            return np.zeros(0, np.uint8)
        view = np.frombuffer(self._source, np.uint8, self._size, self._start)
        return view

    def memoryview(self) -> memoryview:
        if self._array is None and self._make is not None:
            self.set(self._compute())
        if self._array is not None:
            return memoryview(self._array).cast("B")
        if self._size == 0:
            return memoryview(b"")
        return memoryview(self._source)[self._start:self._start + self._size]

    def write_view(self) -> memoryview:
        """The bytes for a writer: like ``memoryview`` but a deferred buffer is computed for
        this write only and not kept."""
        if self._array is None and self._make is not None:
            return memoryview(self._compute()).cast("B")
        return self.memoryview()

    def snapshot(self) -> "Buffer":
        """A Buffer over the same bytes as now, unaffected by later ``set`` calls on this one
        (what a deferred computation reads from)."""
        if self._array is None and self._make is not None:
            return Buffer.deferred(self._make, self._size)
        if self._array is not None:
            b = Buffer()
            b._array, b._size = self._array, self._array.size
            return b
        return Buffer(source=self._source, start=self._start, size=self._size)

    def release_source(self) -> None:
        """Drop the resident pages of the source file bytes this buffer views (after reading
        them once); they come back from the page cache if read again."""
        from .io import _release
        _release(self)

    def set(self, data) -> None:
        arr = np.ascontiguousarray(data)
        if arr.dtype.byteorder == ">":
            arr = arr.byteswap().view(arr.dtype.newbyteorder("<"))
        arr = arr.reshape(-1).view(np.uint8).copy()
        arr.flags.writeable = False
        self._array = arr
        self._source = None
        self._make = None
        self._size = arr.size

    def source_span(self) -> tuple[int, int] | None:
        """(start, size) of unmodified bytes in the source, for zero-copy writers."""
        if self._array is None and self._make is None and self._size:
            return self._start, self._size
        return None


def _as_list(v) -> list:
    if v is None:
        return []
    return [int(x) for x in v]


def _decode(s) -> str | None:
    if s is None:
        return None
    return s.decode("utf-8", "replace") if isinstance(s, (bytes, bytearray)) else str(s)


class Quantization:
    """Read-only summary of a tensor's QuantizationParametersT."""

    __slots__ = ("scale", "zero_point", "axis", "min", "max", "details_type")

    def __init__(self, q: "fb.QuantizationParametersT"):
        self.scale = np.asarray(q.scale if q.scale is not None else [], np.float32)
        self.zero_point = np.asarray(q.zeroPoint if q.zeroPoint is not None else [], np.int64)
        self.axis = int(q.quantizedDimension or 0)
        self.min = None if q.min is None else np.asarray(q.min, np.float32)
        self.max = None if q.max is None else np.asarray(q.max, np.float32)
        self.details_type = int(q.detailsType or 0)

    @property
    def per_channel(self) -> bool:
        return self.scale.size > 1

    def __repr__(self) -> str:
        return f"Quantization(scale={self.scale.tolist()[:4]}, zero_point={self.zero_point.tolist()[:4]}, axis={self.axis})"


class Tensor:
    """One tensor of a subgraph (a view: edits go to the underlying TensorT and buffers)."""

    __slots__ = ("subgraph", "index", "_t")

    def __init__(self, subgraph: "Subgraph", index: int, t: "fb.TensorT"):
        self.subgraph = subgraph
        self.index = index
        self._t = t

    @property
    def raw(self) -> "fb.TensorT":
        return self._t

    @property
    def model(self) -> "Model":
        return self.subgraph.model

    @property
    def name(self) -> str:
        return _decode(self._t.name) or ""

    @name.setter
    def name(self, value: str) -> None:
        self._t.name = value

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(_as_list(self._t.shape))

    @shape.setter
    def shape(self, value) -> None:
        self._t.shape = [int(x) for x in value]

    @property
    def shape_signature(self) -> tuple[int, ...] | None:
        return None if self._t.shapeSignature is None else tuple(_as_list(self._t.shapeSignature))

    @property
    def type(self) -> int:
        return int(self._t.type)

    @property
    def type_name(self) -> str:
        return schema.TYPE_NAMES.get(self.type, str(self.type))

    @property
    def dtype(self) -> np.dtype | None:
        return schema.NUMPY_DTYPES.get(self.type)

    @property
    def buffer_index(self) -> int:
        return int(self._t.buffer)

    @property
    def buffer(self) -> Buffer | None:
        b = self.buffer_index
        return self.model.buffers[b] if 0 < b < len(self.model.buffers) else None

    @property
    def is_constant(self) -> bool:
        b = self.buffer
        return b is not None and b.nbytes > 0

    @property
    def is_variable(self) -> bool:
        return bool(self._t.isVariable)

    @property
    def num_elements(self) -> int:
        # An absent shape is a scalar (the converter omits empty vectors): one element.
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def quantization(self) -> Quantization | None:
        q = self._t.quantization
        if q is None or (q.scale is None and q.zeroPoint is None and not q.detailsType):
            return None
        return Quantization(q)

    @property
    def is_quantized(self) -> bool:
        q = self.quantization
        return q is not None and q.scale.size > 0

    def set_quantization(self, scale=None, zero_point=None, axis: int = 0) -> None:
        """Replace the quantization (None clears it); scalars and arrays are accepted."""
        if scale is None:
            self._t.quantization = None
            return
        scale = np.atleast_1d(np.asarray(scale, np.float32))
        zp = np.zeros(scale.shape, np.int64) if zero_point is None else np.atleast_1d(np.asarray(zero_point, np.int64))
        if zp.size == 1 and scale.size > 1:
            zp = np.full(scale.shape, zp[0], np.int64)
        q = fb.QuantizationParametersT()
        q.scale = scale
        q.zeroPoint = zp
        q.quantizedDimension = int(axis)
        self._t.quantization = q

    @property
    def sparsity(self) -> "fb.SparsityParametersT | None":
        return self._t.sparsity

    @property
    def data(self) -> np.ndarray | None:
        """Constant data as a read-only array: shaped for dense tensors, 1-D stored values
        for sparse ones, raw uint8 bytes for packed or string types. None for activations."""
        b = self.buffer
        if b is None or b.nbytes == 0:
            return None
        raw = b.data
        dt = self.dtype
        if dt is None:
            return raw
        if raw.size % dt.itemsize:
            raise ValueError(f"tensor {self.name!r}: buffer of {raw.size} bytes is not a whole number of {dt}")
        arr = raw.view(dt)
        if self._t.sparsity is None and arr.size == self.num_elements:
            arr = arr.reshape(self.shape)
        return arr

    def set_data(self, array, tensor_type: int | None = None, *, keep_shape: bool = False) -> None:
        """Replace constant data (and its type); copy-on-write when the buffer is shared."""
        array = np.asarray(array)
        if tensor_type is None:
            tensor_type = schema.tensor_type_of(array.dtype)
        b = self._own_buffer()
        if b is None:
            self._t.buffer = self.model.add_buffer(array)
        else:
            self.model.buffers[b].set(array)
        self._t.type = int(tensor_type)
        if not keep_shape and self._t.sparsity is None:
            self.shape = array.shape
            if self._t.shapeSignature is not None:
                self._t.shapeSignature = list(array.shape)

    def _own_buffer(self) -> int | None:
        """The buffer index if this tensor is its only user (safe to change in place)."""
        b = self.buffer_index
        if b == 0 or b >= len(self.model.buffers) or self.model.buffer_users(b) != [self]:
            return None
        return b

    def set_buffer(self, buffer: Buffer) -> None:
        """Point the tensor at other bytes of the same type and stored shape (such as a
        deferred or spilled Buffer); a buffer shared with other tensors is left to them."""
        b = self._own_buffer()
        if b is None:
            self._t.buffer = self.model.add_buffer(buffer)
        else:
            self.model.buffers[b] = buffer

    def __repr__(self) -> str:
        return f"Tensor({self.index}, {self.name!r}, {self.type_name}{list(self.shape)})"


class Operator:
    """One operator of a subgraph, in execution order."""

    __slots__ = ("subgraph", "_o")

    def __init__(self, subgraph: "Subgraph", o: "fb.OperatorT"):
        self.subgraph = subgraph
        self._o = o

    @property
    def raw(self) -> "fb.OperatorT":
        return self._o

    @property
    def index(self) -> int:
        return self.subgraph._op_position(self)

    @property
    def opcode(self) -> "fb.OperatorCodeT":
        return self.subgraph.model.operator_codes[self._o.opcodeIndex]

    @property
    def opcode_index(self) -> int:
        return int(self._o.opcodeIndex)

    @property
    def builtin_code(self) -> int:
        return schema.builtin_code(self.opcode)

    @property
    def name(self) -> str:
        return schema.op_name(self.opcode)

    @property
    def custom_code(self) -> str | None:
        return _decode(self.opcode.customCode)

    @property
    def version(self) -> int:
        return int(self.opcode.version or 1)

    @property
    def inputs(self) -> list[int]:
        return self._o.inputs

    @property
    def outputs(self) -> list[int]:
        return self._o.outputs

    def input(self, i: int) -> Tensor | None:
        ins = self._o.inputs
        if i >= len(ins) or ins[i] < 0:
            return None
        return self.subgraph.tensors[ins[i]]

    def output(self, i: int = 0) -> Tensor:
        return self.subgraph.tensors[self._o.outputs[i]]

    def set_input(self, i: int, tensor_index: int) -> None:
        self._o.inputs[i] = int(tensor_index)

    @property
    def options(self):
        return self._o.builtinOptions

    @property
    def options_type(self) -> int:
        return int(self._o.builtinOptionsType or 0)

    @property
    def custom_options(self) -> bytes | None:
        c = self._o.customOptions
        return None if c is None else bytes(np.asarray(c, np.uint8))

    def __repr__(self) -> str:
        return f"Operator({self.name} v{self.version}, in={self.inputs}, out={self.outputs})"


class Subgraph:
    __slots__ = ("model", "_s", "tensors", "operators")

    def __init__(self, model: "Model", s: "fb.SubGraphT"):
        self.model = model
        self._s = s
        s.tensors = s.tensors or []
        s.operators = s.operators or []
        s.inputs = _as_list(s.inputs)
        s.outputs = _as_list(s.outputs)
        for o in s.operators:
            o.inputs = _as_list(o.inputs)
            o.outputs = _as_list(o.outputs)
            if o.intermediates is not None:
                o.intermediates = _as_list(o.intermediates)
        self.tensors = [Tensor(self, i, t) for i, t in enumerate(s.tensors)]
        self.operators = [Operator(self, o) for o in s.operators]

    @property
    def raw(self) -> "fb.SubGraphT":
        return self._s

    @property
    def index(self) -> int:
        return self.model.subgraphs.index(self)

    @property
    def name(self) -> str:
        return _decode(self._s.name) or ""

    @property
    def inputs(self) -> list[int]:
        return self._s.inputs

    @property
    def outputs(self) -> list[int]:
        return self._s.outputs

    def _op_position(self, op: Operator) -> int:
        for i, o in enumerate(self.operators):
            if o is op:
                return i
        raise ValueError("operator is not in this subgraph")

    # -- graph queries -------------------------------------------------------------------
    def producer(self, tensor_index: int) -> Operator | None:
        for op in self.operators:
            if tensor_index in op.outputs:
                return op
        return None

    def consumers(self, tensor_index: int) -> list[tuple[Operator, int]]:
        """Every (operator, input position) that reads the tensor."""
        return [(op, i) for op in self.operators for i, t in enumerate(op.inputs) if t == tensor_index]

    def consumer_map(self) -> dict[int, list[tuple[Operator, int]]]:
        uses: dict[int, list[tuple[Operator, int]]] = {}
        for op in self.operators:
            for i, t in enumerate(op.inputs):
                if t >= 0:
                    uses.setdefault(t, []).append((op, i))
        return uses

    def producer_map(self) -> dict[int, Operator]:
        return {t: op for op in self.operators for t in op.outputs}

    def constant_inputs(self) -> Iterator[tuple[Operator, int, Tensor]]:
        """(op, position, tensor) for every constant operand, in graph order."""
        for op in self.operators:
            for i, t in enumerate(op.inputs):
                if t >= 0 and self.tensors[t].is_constant:
                    yield op, i, self.tensors[t]

    # -- edits ---------------------------------------------------------------------------
    def add_tensor(self, name: str, shape, tensor_type: int, *, data=None, quantization=None,
                   shape_signature=None) -> Tensor:
        t = fb.TensorT()
        t.name = name
        t.shape = [int(x) for x in shape]
        t.type = int(tensor_type)
        if shape_signature is not None:
            t.shapeSignature = [int(x) for x in shape_signature]
        t.buffer = self.model.add_buffer(data) if data is not None else 0
        self._s.tensors.append(t)
        tensor = Tensor(self, len(self.tensors), t)
        self.tensors.append(tensor)
        if quantization is not None:
            tensor.set_quantization(*quantization)
        return tensor

    def clone_tensor(self, tensor_index: int, suffix: str = "_copy") -> Tensor:
        """A new tensor like the given one; it shares the buffer until one of them is set."""
        t = copy.deepcopy(self._s.tensors[tensor_index])
        t.name = (_decode(t.name) or "") + suffix
        self._s.tensors.append(t)
        tensor = Tensor(self, len(self.tensors), t)
        self.tensors.append(tensor)
        return tensor

    def private_input(self, op: Operator, position: int, suffix: str = "_copy") -> Tensor:
        """The op's input as a tensor no other op or graph output reads (cloned if shared)."""
        ti = op.inputs[position]
        users = self.consumers(ti)
        if len(users) == 1 and ti not in self.outputs:
            return self.tensors[ti]
        clone = self.clone_tensor(ti, suffix)
        op.set_input(position, clone.index)
        return clone

    def insert_operator(self, position: int, op_name: str, inputs: list[int], outputs: list[int], *,
                        options=None, version: int = 1, custom_code: str | None = None) -> Operator:
        o = fb.OperatorT()
        o.opcodeIndex = self.model.opcode_index(op_name, version, custom_code)
        o.inputs = [int(x) for x in inputs]
        o.outputs = [int(x) for x in outputs]
        if options is None and op_name in schema.OP_OPTIONS:
            otype, ocls = schema.OP_OPTIONS[op_name]
            options = (otype, ocls())
        if options is not None:
            o.builtinOptionsType, o.builtinOptions = options
        self._s.operators.insert(position, o)
        op = Operator(self, o)
        self.operators.insert(position, op)
        return op

    def insert_before(self, consumer: Operator, op_name: str, inputs, outputs, **kw) -> Operator:
        return self.insert_operator(consumer.index, op_name, inputs, outputs, **kw)

    def remove_operator(self, op: Operator) -> None:
        i = op.index
        del self._s.operators[i]
        del self.operators[i]

    def replace_uses(self, old: int, new: int, *, ops: Iterable[Operator] | None = None,
                     graph_outputs: bool = True) -> int:
        """Point readers of tensor ``old`` at ``new``; returns how many inputs changed."""
        n = 0
        for op in (self.operators if ops is None else ops):
            for i, t in enumerate(op.inputs):
                if t == old:
                    op.inputs[i] = new
                    n += 1
        if graph_outputs:
            self._s.outputs = [new if t == old else t for t in self._s.outputs]
            self.model._rename_signature_tensor(self, old, new, outputs=True)
        return n


def _signature_maps(sig) -> list:
    return list(sig.inputs or []) + list(sig.outputs or [])


class Model:
    """A loaded .tflite model. Build with ``tflopt.load``; write with ``save`` / ``to_bytes``."""

    def __init__(self, raw: "fb.ModelT", buffers: list[Buffer], *, source_name: str = "<bytes>",
                 source=None):
        self._m = raw
        raw.operatorCodes = raw.operatorCodes or []
        raw.subgraphs = raw.subgraphs or []
        raw.metadata = raw.metadata or []
        raw.signatureDefs = raw.signatureDefs or []
        self.buffers = buffers
        self.source_name = source_name
        self._source = source  # keeps the mmap alive while buffers view it
        self.subgraphs = [Subgraph(self, s) for s in raw.subgraphs]

    @property
    def raw(self) -> "fb.ModelT":
        return self._m

    @property
    def operator_codes(self) -> list:
        return self._m.operatorCodes

    @property
    def signature_defs(self) -> list:
        return self._m.signatureDefs

    @property
    def description(self) -> str | None:
        return _decode(self._m.description)

    @property
    def version(self) -> int:
        return int(self._m.version)

    @property
    def main(self) -> Subgraph:
        return self.subgraphs[0]

    def operators(self) -> Iterator[Operator]:
        for sg in self.subgraphs:
            yield from sg.operators

    # -- buffers and op codes --------------------------------------------------------------
    def add_buffer(self, data=None) -> int:
        """A new buffer holding ``data`` (an array, or a ``Buffer`` such as a deferred one)."""
        self.buffers.append(data if isinstance(data, Buffer) else Buffer(data) if data is not None else Buffer())
        return len(self.buffers) - 1

    def buffer_users(self, buffer_index: int) -> list[Tensor]:
        return [t for sg in self.subgraphs for t in sg.tensors if t.buffer_index == buffer_index]

    def opcode_index(self, op_name: str, version: int = 1, custom_code: str | None = None) -> int:
        """Index of the op code for ``op_name`` (added if missing; version raised if lower)."""
        code = schema.OP_CODES[op_name]
        for i, oc in enumerate(self._m.operatorCodes):
            if schema.builtin_code(oc) == code and (code != schema.BuiltinOperator.CUSTOM
                                                     or _decode(oc.customCode) == custom_code):
                if (oc.version or 1) < version:
                    oc.version = version
                return i
        self._m.operatorCodes.append(schema.make_opcode(op_name, version, custom_code))
        return len(self._m.operatorCodes) - 1

    # -- metadata ------------------------------------------------------------------------
    def metadata_names(self) -> list[str]:
        return [_decode(m.name) or "" for m in self._m.metadata]

    def get_metadata(self, name: str) -> bytes | None:
        for m in self._m.metadata:
            if _decode(m.name) == name:
                b = self.buffers[m.buffer]
                return bytes(b.memoryview())
        return None

    def set_metadata(self, name: str, value: bytes) -> None:
        for m in self._m.metadata:
            if _decode(m.name) == name:
                if len(self.buffer_users(m.buffer)) == 0:
                    self.buffers[m.buffer].set(np.frombuffer(value, np.uint8))
                else:
                    m.buffer = self.add_buffer(np.frombuffer(value, np.uint8))
                return
        md = fb.MetadataT()
        md.name = name
        md.buffer = self.add_buffer(np.frombuffer(value, np.uint8))
        self._m.metadata.append(md)

    def remove_metadata(self, name: str) -> bool:
        before = len(self._m.metadata)
        self._m.metadata = [m for m in self._m.metadata if _decode(m.name) != name]
        return len(self._m.metadata) != before

    @property
    def min_runtime_version(self) -> str | None:
        v = self.get_metadata("min_runtime_version")
        return None if v is None else v.split(b"\0", 1)[0].decode("ascii", "replace")

    @min_runtime_version.setter
    def min_runtime_version(self, value: str) -> None:
        # The runtime reads the first entry, up to the first NUL; the converter reserves 16 bytes.
        raw = value.encode("ascii")
        if len(raw) >= 16:
            raise ValueError(f"min_runtime_version {value!r} does not fit in 16 bytes")
        self.set_metadata("min_runtime_version", raw.ljust(16, b"\0"))

    def _rename_signature_tensor(self, sg: Subgraph, old: int, new: int, *, outputs: bool) -> None:
        index = self.subgraphs.index(sg)
        for sig in self._m.signatureDefs:
            if sig.subgraphIndex != index:
                continue
            for tm in (sig.outputs if outputs else sig.inputs) or []:
                if tm.tensorIndex == old:
                    tm.tensorIndex = new

    # -- clean-up --------------------------------------------------------------------------
    def remove_unused(self) -> dict[str, int]:
        """Drop tensors no op, graph boundary or signature names, then unused buffers and op
        codes, renumbering every reference. Returns how many of each went."""
        removed = {"tensors": 0, "buffers": 0, "operator_codes": 0}
        for si, sg in enumerate(self.subgraphs):
            live = set(sg.inputs) | set(sg.outputs)
            for op in sg.operators:
                live.update(t for t in op.inputs if t >= 0)
                live.update(t for t in op.outputs if t >= 0)
                live.update(t for t in (op.raw.intermediates or []) if t >= 0)
            for sig in self._m.signatureDefs:
                if sig.subgraphIndex == si:
                    live.update(tm.tensorIndex for tm in _signature_maps(sig))
            keep = sorted(t for t in live if 0 <= t < len(sg.tensors))
            if len(keep) == len(sg.tensors):
                continue
            remap = {old: new for new, old in enumerate(keep)}
            removed["tensors"] += len(sg.tensors) - len(keep)
            sg.raw.tensors = [sg.raw.tensors[i] for i in keep]
            sg.tensors = [Tensor(sg, i, t) for i, t in enumerate(sg.raw.tensors)]

            def m(t: int) -> int:
                return remap[t] if t >= 0 else t

            for op in sg.operators:
                op.raw.inputs = [m(t) for t in op.inputs]
                op.raw.outputs = [m(t) for t in op.outputs]
                if op.raw.intermediates is not None:
                    op.raw.intermediates = [m(t) for t in op.raw.intermediates]
            sg.raw.inputs = [m(t) for t in sg.inputs]
            sg.raw.outputs = [m(t) for t in sg.outputs]
            for sig in self._m.signatureDefs:
                if sig.subgraphIndex == si:
                    for tm in _signature_maps(sig):
                        tm.tensorIndex = m(tm.tensorIndex)

        used_buffers = {0}
        for sg in self.subgraphs:
            used_buffers.update(t.buffer_index for t in sg.tensors)
        used_buffers.update(m.buffer for m in self._m.metadata)
        used_buffers.update(int(b) for b in (self._m.metadataBuffer if self._m.metadataBuffer is not None else []))
        keep_b = sorted(b for b in used_buffers if b < len(self.buffers))
        if len(keep_b) != len(self.buffers):
            bmap = {old: new for new, old in enumerate(keep_b)}
            removed["buffers"] = len(self.buffers) - len(keep_b)
            self.buffers = [self.buffers[i] for i in keep_b]
            for sg in self.subgraphs:
                for t in sg.raw.tensors:
                    t.buffer = bmap.get(t.buffer, 0)
            for md in self._m.metadata:
                md.buffer = bmap[md.buffer]
            if self._m.metadataBuffer is not None:
                self._m.metadataBuffer = [bmap[int(b)] for b in self._m.metadataBuffer]

        used_codes = sorted({op.raw.opcodeIndex for op in self.operators()})
        if len(used_codes) != len(self._m.operatorCodes):
            cmap = {old: new for new, old in enumerate(used_codes)}
            removed["operator_codes"] = len(self._m.operatorCodes) - len(used_codes)
            self._m.operatorCodes = [self._m.operatorCodes[i] for i in used_codes]
            for op in self.operators():
                op.raw.opcodeIndex = cmap[op.raw.opcodeIndex]
        return removed

    def share_empty_buffer(self) -> int:
        """Point tensors without data at buffer 0. The converter gives every activation its own
        empty buffer; buffer 0 is the schema's shared "no data" entry. Returns how many moved
        (``remove_unused`` then drops the buffers left behind)."""
        metadata_buffers = {m.buffer for m in self._m.metadata}
        moved = 0
        for sg in self.subgraphs:
            for t in sg.raw.tensors:
                if 0 < t.buffer < len(self.buffers) and self.buffers[t.buffer].nbytes == 0 \
                        and t.buffer not in metadata_buffers:
                    t.buffer = 0
                    moved += 1
        return moved

    # -- serialisation ---------------------------------------------------------------------
    def to_bytes(self, *, layout: str = "auto") -> bytes:
        from .io import serialize
        return serialize(self, layout=layout)

    def serialized_size(self, *, layout: str = "auto") -> int:
        """``len(self.to_bytes())``, computed from the tables and buffer sizes alone."""
        from .io import serialized_size
        return serialized_size(self, layout=layout)

    def save(self, path, *, layout: str = "auto") -> None:
        from .io import save
        save(self, path, layout=layout)

    def clone(self) -> "Model":
        """An independent copy (serialised and re-read, so nothing is shared)."""
        from .io import load
        return load(self.to_bytes(), name=self.source_name)

    def __repr__(self) -> str:
        n_ops = sum(len(sg.operators) for sg in self.subgraphs)
        return f"Model({self.source_name!r}, {len(self.subgraphs)} subgraphs, {n_ops} ops, {len(self.buffers)} buffers)"
