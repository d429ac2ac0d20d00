"""What the LiteRT interpreter's default XNNPACK delegate really takes, op by op.

After delegation the interpreter lists the original nodes followed by DELEGATE nodes; each
DELEGATE node's inputs and outputs bound one partition, so walking producers back from its
outputs until its inputs recovers the original ops it replaced. Only subgraph 0 is visible
through the Python API.
"""
from __future__ import annotations


def xnnpack_delegated(model) -> tuple[set[int], list[list[int]]]:
    """(indices of subgraph-0 ops XNNPACK took, the partitions as op index lists)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    from ..runtime import _content
    interp = Interpreter(model_content=_content(model), num_threads=1,
                         experimental_op_resolver_type=OpResolverType.AUTO)
    try:
        interp.allocate_tensors()
    except RuntimeError:
        # Delegation happens before kernels are prepared, so an op the runtime lacks (a
        # MediaPipe custom op) fails allocation without hiding what was delegated.
        pass
    nodes_api = interp._interpreter
    n_orig = len(model.subgraphs[0].operators)
    nodes = [(nodes_api.NodeName(i), list(nodes_api.NodeInputs(i)), list(nodes_api.NodeOutputs(i)))
             for i in range(nodes_api.NumNodes())]
    del nodes_api
    producer = {t: i for i in range(n_orig) for t in nodes[i][2]}
    taken: set[int] = set()
    parts = []
    for name, ins, outs in nodes[n_orig:]:
        if name != "DELEGATE":
            raise RuntimeError(f"unexpected node {name!r} after the original {n_orig} ops")
        stop = set(ins)
        part: set[int] = set()
        stack = [t for t in outs if t >= 0]
        seen: set[int] = set()
        while stack:
            t = stack.pop()
            if t in seen or t in stop:
                continue
            seen.add(t)
            p = producer.get(t)
            if p is not None and p not in part:
                part.add(p)
                stack.extend(x for x in nodes[p][1] if x >= 0)
        parts.append(sorted(part))
        taken |= part
    return taken, parts
