"""Housekeeping: drop what no operator, graph boundary or signature uses."""
from __future__ import annotations

from tflopt.pipeline import Pass, PassResult, register


@register
class RemoveUnused(Pass):
    name = "cleanup"
    summary = "Drop unused tensors, buffers and operator codes, renumbering references."

    def run(self, model, ctx):
        removed = model.remove_unused()
        return PassResult(changed=any(removed.values()), stats=removed)
