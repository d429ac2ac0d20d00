"""The TFLite schema as tflopt uses it: the generated object API, enums and dtype maps.

ai-edge-litert ships a flatc-generated module with the object API (``ModelT.Pack``), which
lets every options table round-trip without hand-written builders for each of them.
"""
from __future__ import annotations

import numpy as np
from ai_edge_litert import schema_py_generated as fb

TensorType = fb.TensorType
BuiltinOperator = fb.BuiltinOperator
BuiltinOptions = fb.BuiltinOptions
BuiltinOptions2 = fb.BuiltinOptions2

TYPE_NAMES: dict[int, str] = {v: k for k, v in vars(TensorType).items() if not k.startswith("_")}
TYPE_CODES: dict[str, int] = {k: v for v, k in TYPE_NAMES.items()}
OP_NAMES: dict[int, str] = {v: k for k, v in vars(BuiltinOperator).items() if not k.startswith("_")}
OP_CODES: dict[str, int] = {k: v for v, k in OP_NAMES.items()}

# Element dtype of each tensor type whose storage is one numpy element per tensor element.
# INT4/UINT4/INT2 are packed and STRING/RESOURCE/VARIANT have no fixed width: they map to None.
NUMPY_DTYPES: dict[int, np.dtype | None] = {
    TensorType.FLOAT32: np.dtype("<f4"),
    TensorType.FLOAT16: np.dtype("<f2"),
    TensorType.INT32: np.dtype("<i4"),
    TensorType.UINT8: np.dtype("u1"),
    TensorType.INT64: np.dtype("<i8"),
    TensorType.BOOL: np.dtype("?"),
    TensorType.INT16: np.dtype("<i2"),
    TensorType.COMPLEX64: np.dtype("<c8"),
    TensorType.INT8: np.dtype("i1"),
    TensorType.FLOAT64: np.dtype("<f8"),
    TensorType.COMPLEX128: np.dtype("<c16"),
    TensorType.UINT64: np.dtype("<u8"),
    TensorType.UINT32: np.dtype("<u4"),
    TensorType.UINT16: np.dtype("<u2"),
    TensorType.BFLOAT16: np.dtype("<u2"),  # raw bits; numpy has no bfloat16
}
for _name in ("STRING", "RESOURCE", "VARIANT", "INT4", "UINT4", "INT2", "FLOAT8_E4M3FN", "FLOAT8_E5M2"):
    if hasattr(TensorType, _name):
        NUMPY_DTYPES.setdefault(getattr(TensorType, _name), None)

_FROM_NUMPY = {np.dtype(v).str: k for k, v in NUMPY_DTYPES.items() if v is not None and k != TensorType.BFLOAT16}


def tensor_type_of(dtype) -> int:
    """TensorType code for a numpy dtype."""
    dt = np.dtype(dtype).newbyteorder("<") if np.dtype(dtype).itemsize > 1 else np.dtype(dtype)
    try:
        return _FROM_NUMPY[dt.str]
    except KeyError:
        raise ValueError(f"no TFLite tensor type for numpy dtype {dtype}") from None


def builtin_code(opcode: "fb.OperatorCodeT") -> int:
    """The op code with the schema's rule: max of the 32-bit and the deprecated 8-bit field."""
    return max(int(opcode.builtinCode or 0), int(opcode.deprecatedBuiltinCode or 0))


def op_name(opcode: "fb.OperatorCodeT") -> str:
    code = builtin_code(opcode)
    if code == BuiltinOperator.CUSTOM:
        custom = opcode.customCode
        if isinstance(custom, bytes):
            custom = custom.decode("utf-8", "replace")
        return f"CUSTOM:{custom}" if custom else "CUSTOM"
    return OP_NAMES.get(code, f"UNKNOWN_{code}")


def make_opcode(name: str, version: int = 1, custom_code: str | None = None) -> "fb.OperatorCodeT":
    code = OP_CODES[name]
    oc = fb.OperatorCodeT()
    oc.builtinCode = code
    oc.deprecatedBuiltinCode = min(code, BuiltinOperator.PLACEHOLDER_FOR_GREATER_OP_CODES)
    oc.version = version
    if custom_code is not None:
        oc.customCode = custom_code
    return oc


def options_class_name(options_type: int, second: bool = False) -> str | None:
    enum = BuiltinOptions2 if second else BuiltinOptions
    for k, v in vars(enum).items():
        if v == options_type and not k.startswith("_") and k != "NONE":
            return k
    return None


# The options table each builtin op carries, for ops a pass may create.
OP_OPTIONS: dict[str, tuple[int, type]] = {
    "DEQUANTIZE": (BuiltinOptions.DequantizeOptions, fb.DequantizeOptionsT),
    "QUANTIZE": (BuiltinOptions.QuantizeOptions, fb.QuantizeOptionsT),
    "DENSIFY": (BuiltinOptions.DensifyOptions, fb.DensifyOptionsT),
}
