"""Islands: the groups of ops that go integer or stay float together.

An op whose result only a data-movement op or a clamping activation reads hands its
encoding on (the activation narrows it, a reshape or pool keeps it): floating one without
the other would only add a QUANTIZE / DEQUANTIZE pair, so they form one island. Every other
quantizable op starts its own island. Islands are keyed by their ops' first output names,
which stay the same across the dequantize a quantize pass may run first.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from tflopt.audit.macs import op_macs
from tflopt.model import Subgraph
from tflopt.passes.qkernels import CLIPPING, SAME_SCALE, kernel_ops
from tflopt.schema import TensorType


@dataclass
class Island:
    ops: list[int] = field(default_factory=list)       # op positions in the subgraph
    keys: list[str] = field(default_factory=list)      # first output names (stable op keys)
    kinds: list[str] = field(default_factory=list)
    macs: int = 0
    weighted: bool = False
    head: bool = False  # writes a graph output

    @property
    def name(self) -> str:
        return self.keys[0]

    def describe(self) -> str:
        return "+".join(dict.fromkeys(self.kinds)) + f" {self.keys[0]}"


def op_key(sg: Subgraph, op) -> str:
    return sg.tensors[op.outputs[0]].name if op.outputs else f"#{op.index}"


def _passes_encoding_on(op) -> bool:
    return op.name in CLIPPING or op.name in SAME_SCALE


def islands(sg: Subgraph, bits: int = 8) -> list[Island]:
    """The islands of the float ops of ``sg`` that have an integer kernel, in graph order."""
    from tflopt.passes.qkernels import WEIGHTED
    table = kernel_ops(bits)
    consumers = sg.consumer_map()
    producers = sg.producer_map()
    of_op: dict[int, Island] = {}
    out: list[Island] = []
    outputs = set(sg.outputs)
    for op in sg.operators:
        if op.name not in table or not any(
                t >= 0 and sg.tensors[t].type == TensorType.FLOAT32 for t in list(op.inputs) + list(op.outputs)):
            continue
        acts = [t for t in op.inputs if t >= 0 and not sg.tensors[t].is_constant]
        island = None
        if _passes_encoding_on(op) and len(acts) == 1:
            src = producers.get(acts[0])
            if src is not None and id(src) in of_op and len(consumers.get(acts[0], [])) == 1 \
                    and acts[0] not in outputs:
                island = of_op[id(src)]
        if island is None:
            island = Island()
            out.append(island)
        of_op[id(op)] = island
        island.ops.append(op.index)
        island.keys.append(op_key(sg, op))
        island.kinds.append(op.name)
        island.macs += op_macs(op)
        island.weighted |= op.name in WEIGHTED
        island.head |= any(t in outputs for t in op.outputs)
    return out
