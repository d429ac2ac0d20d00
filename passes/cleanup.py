"""Housekeeping: drop what no operator, graph boundary or signature uses."""
from __future__ import annotations

from tflopt.pipeline import Pass, PassResult, register


@register
class RemoveUnused(Pass):
    name = "cleanup"
    summary = ("Drop unused tensors, buffers and operator codes, renumbering references; "
               "activations share the empty buffer 0.")

    def run(self, model, ctx):
        moved = model.share_empty_buffer()
        removed = model.remove_unused()
        return PassResult(changed=bool(moved) or any(removed.values()), stats={**removed, "empty_buffers_shared": moved})
