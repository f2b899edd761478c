"""Large CPU buffers with 2 MiB pages: the allocator of the fused kernels' N x V tensors.

A fresh allocation is mapped on first touch, and with 4 KiB pages those faults cost the fused step as much
as its arithmetic (500 MB: 0.13 s of faults against ~0.1 s of compute on the 2-core dev machine; 2 MiB
pages: 0.04 s). ``madvise(MADV_HUGEPAGE)`` asks for 2 MiB pages on that range only; it is what PyTorch's
own ``THP_MEM_ALLOC_ENABLE=1`` does for every allocation. It needs Linux with transparent huge pages in
"madvise" or "always" mode, and is a no-op elsewhere. ``LABELSMOOTH_HUGEPAGES=0`` turns it off.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import sys

import torch

# Buffers from this size on (the N x V gradient, the linear path's grad_W and logits chunk) get the advice.
HUGE_PAGE_MIN_BYTES = 32 << 20
_MADVISE = None


def _madvise_fn():
    global _MADVISE
    if _MADVISE is None:
        fn = None
        if sys.platform.startswith("linux") and hasattr(mmap, "MADV_HUGEPAGE"):
            try:
                fn = ctypes.CDLL(None, use_errno=True).madvise
                fn.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
                fn.restype = ctypes.c_int
            except (OSError, AttributeError):
                fn = None
        _MADVISE = fn or False
    return _MADVISE


def empty(shape, dtype: torch.dtype, device: torch.device, zero: bool = False) -> torch.Tensor:
    """``torch.empty`` (``torch.zeros`` with ``zero=True``), with 2 MiB pages asked for on large CPU buffers.

    The advice covers the whole pages inside the tensor's own bytes, before anything touches them; it
    changes how the range is mapped, never its contents, and a failed ``madvise`` is ignored.
    """
    out = torch.empty(shape, dtype=dtype, device=device)
    nbytes = out.numel() * out.element_size()
    if (
        out.device.type == "cpu"
        and nbytes >= HUGE_PAGE_MIN_BYTES
        and os.environ.get("LABELSMOOTH_HUGEPAGES", "1") != "0"
    ):
        madvise = _madvise_fn()
        if madvise:
            page = mmap.PAGESIZE
            start = -(-out.data_ptr() // page) * page
            end = (out.data_ptr() + nbytes) // page * page
            if end > start:
                madvise(start, end - start, mmap.MADV_HUGEPAGE)
    if zero:
        out.zero_()
    return out
