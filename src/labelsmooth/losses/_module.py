"""The module form of a functional loss: it stores the options and calls the function (internal)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn


class FunctionalLoss(nn.Module):
    """Base of the ``nn.Module`` losses: ``forward(input, target)`` is ``function(input, target, **options)``.

    A subclass sets ``function`` (a ``staticmethod``), checks its arguments in ``__init__`` and passes
    them to :meth:`_keep`; tensors named in ``buffers`` become buffers, so ``.to(device)`` moves them.
    The maths lives once, in the function (DESIGN convention 1).
    """

    function: Callable[..., torch.Tensor]

    def _keep(self, arguments: dict[str, Any], buffers: tuple[str, ...] = ()) -> None:
        """Store ``arguments`` (the ``__init__``'s ``locals()``: ``self`` and ``__class__`` are skipped)."""
        self._options = [k for k in arguments if k not in ("self", "__class__")]
        for name in self._options:
            if name in buffers:
                self.register_buffer(name, arguments[name])
            else:
                setattr(self, name, arguments[name])

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return type(self).function(input, target, **{name: getattr(self, name) for name in self._options})
