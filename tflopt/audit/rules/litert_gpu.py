"""LiteRT GPU accelerator (``CompiledModel`` with ``HardwareAccelerator.GPU``; on Linux the
WebGPU accelerator, libLiteRtWebGpuAccelerator.so in the ai-edge-litert wheel).

It shares the GPU delegate's graph builder (model_builder.cc), so the table starts from the
GPU delegate's (``gpu.py``) and records, as data, where the observed runtime differs. Every
entry below was checked against ``CHECKED_AGAINST`` with ``tflopt audit --observe -t
litert-gpu`` (one-op submodels compiled by the runtime), on the fixtures and the mediapipe
corpus (tests/test_audit_observed.py).
"""
from dataclasses import replace

from ..spec import ObservedException, Partitioning, Rule, Target
from . import gpu

CHECKED_AGAINST = "ai-edge-litert 2.3.0 (WebGPU accelerator on Mesa 25.0.7 lavapipe)"
OBSERVED = f"observed: {CHECKED_AGAINST}, one-op submodels"

# Ops the GPU delegate's table lists that this runtime does not take (observed: DENSIFY in
# face_detection_full_range_sparse, with every op reading the weights it expands).
NOT_TAKEN: tuple[str, ...] = ("DENSIFY",)
# Ops this runtime takes beyond the GPU delegate's table (observed: UNPACK in the GRU fixtures).
ALSO_TAKEN: tuple[str, ...] = ("UNPACK",)
# GPU-delegate rules this runtime does not enforce (by the part of the id after "gpu."), with
# the observation that retired them; replacements, if any, follow in EXTRA.
DROPPED: dict[str, str] = {
    "version": "FULLY_CONNECTED v12 (dynamic-range and float16-weight fixtures) is taken: ceilings re-checked",
    "mul.broadcast": "MUL of [1,8,1] by [1,1,32] (attention fixtures) is taken: mutual broadcast works",
    "slice.rank": "STRIDED_SLICE of a rank-2 tensor (GRU fixtures) is taken",
    "dtype": "int16 ADD / MUL / STRIDED_SLICE / RESHAPE (int16x8 fixtures) and int32 PACK (a Flatten's shape "
             "arithmetic) are taken",
}
MAX_VERSION = {**gpu.MAX_VERSION, "FULLY_CONNECTED": 12}
# Tensor types taken beyond the GPU delegate's (observed op by op, by op).
MORE_TYPES = {"ADD": ("INT16",), "MUL": ("INT16",), "STRIDED_SLICE": ("INT16",), "RESHAPE": ("INT16",),
              "PACK": ("INT32",)}
DTYPE_EXCEPT = ("CAST", "GATHER", "ONE_HOT", "SELECT", "SELECT_V2", "DEQUANTIZE", "DENSIFY")


def _port(rule: Rule) -> Rule:
    new_id = "litert_gpu." + rule.id.split(".", 1)[1]
    if rule.id == "gpu.op":
        names = tuple(n for n in rule.params["names"] if n not in NOT_TAKEN) + ALSO_TAKEN
        return replace(rule, id=new_id, params={**rule.params, "names": names})
    return replace(rule, id=new_id)


def _rule(id, kind, reason, ops="*", source=OBSERVED, except_ops=(), **params) -> Rule:
    return Rule(id=f"litert_gpu.{id}", kind=kind, reason=reason, ops=ops, params=params, source=source,
                except_ops=except_ops)


EXTRA = (
    _rule("version", "max_version", "op version newer than the accelerator takes", versions=MAX_VERSION,
          source=f"{gpu.CHECK}; FULLY_CONNECTED {OBSERVED}"),
    _rule("dtype", "types", "tensor type not taken (runtime tensors float32/float16/int8/uint8)",
          which="activations", allowed=gpu.RUNTIME, except_ops=DTYPE_EXCEPT + tuple(MORE_TYPES), source=gpu.CHECK),
) + tuple(
    _rule(f"dtype.{op.lower()}", "types", f"tensor type not taken (float32/float16/int8/uint8/{'/'.join(t.lower() for t in more)})",
          (op,), which="activations", allowed=gpu.RUNTIME + more)
    for op, more in MORE_TYPES.items()
) + (
    _rule("sparse_weights", "densified", "sparse weights (DENSIFY) are not taken: the op stays on the CPU",
          which="inputs"),
    _rule("slice.rank", "rank_in", "SLICE/STRIDED_SLICE input rank 2, 3 or 4", ("SLICE", "STRIDED_SLICE"),
          which="in:0", ranks=(2, 3, 4)),
)
RULES = tuple(_port(r) for r in gpu.RULES if r.id.split(".", 1)[1] not in DROPPED) + EXTRA

TARGET = Target(
    name="litert-gpu",
    title="LiteRT GPU accelerator (CompiledModel)",
    rules=RULES,
    partitioning=Partitioning(note="ops the accelerator takes run on it; the rest falls back to the CPU"),
    sources=("ai.google.dev/edge/litert/performance/gpu", "ai.google.dev/edge/litert/next/gpu",
             "LiteRT litert/runtime/accelerators/gpu", OBSERVED),
    suggestions=("quantize(mode=float16)",),
    checked_against=CHECKED_AGAINST,
    observed_exceptions=(
        # The one-op model is compiled at the stored shapes; this model's input is [-1, -1]
        # stored as a [1, 1] placeholder, at which its first strided convolution has no valid
        # output (the model itself only prepares once its input is resized).
        ObservedException("CONV_2D", True, "its input is stored at the [1, 1] placeholder of a [-1, -1] signature, "
                          "too small for the kernel: the one-op model cannot prepare at it", ("dynamic_fp32",)),
    ),
    notes=(f"Rules checked against {CHECKED_AGAINST}; `--observe` compiles the model and its ops to confirm.",),
)
