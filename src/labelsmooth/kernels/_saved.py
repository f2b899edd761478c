"""Gradients computed in forward and scaled by ``grad_output`` in backward: one rule for the fused losses."""

from __future__ import annotations

from typing import Any

import torch


def scale_saved_grads(ctx: Any, grad_output: torch.Tensor, name: str) -> tuple[torch.Tensor | None, ...]:
    """Multiply the gradients saved by ``name``'s forward (``ctx.saved_tensors``) by ``grad_output``, in
    place, and return them.

    ``grad_output == 1`` (the usual ``loss.backward()``) leaves them untouched, so backward may run
    again; any other value consumes them (``ctx.consumed``, set ``False`` in forward), and a second
    backward raises RuntimeError instead of scaling twice.
    """
    if ctx.consumed:
        raise RuntimeError(
            f"{name}'s saved gradients were already scaled in place by an earlier backward "
            "(grad_output != 1); it cannot run backward twice."
        )
    grads = ctx.saved_tensors  # read after the check: autograd frees them once they are consumed
    if not bool((grad_output == 1).all()):
        for g in grads:
            if g is not None:
                g.mul_(grad_output.to(g.dtype))
        ctx.consumed = True
    return grads
