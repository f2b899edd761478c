"""The CPU row kernel in C (``_rows.c``): the loss and gradient of a block of rows, two passes per row.

The eager block pass (:func:`labelsmooth.kernels._core.block_loss_grad`) is a chain of ATen ops, one pass
over the block per op; for bfloat16 inputs it also copies each block into a float32 buffer and the
gradient back (about nine element-wise passes in all, a dozen with soft-capping). ``_rows.c`` does the same
maths in two passes per row, converting bfloat16 to float32 in registers. The first reads the row a tile of
512 logits at a time: the tile in float32 (soft-capped, ``z' = c tanh(z / c)``, if asked, with
``d_k = 1 - tanh(z_k / c)^2`` kept in a second row buffer), whether it holds ``inf`` or ``nan``, its maximum
and its ``sum_k uw_k z_k`` (``sum_k z_k`` for the uniform prior); then, while the tile is still in L1,
``e_k = exp(z_k - m_t)`` into a row buffer of ``V`` floats (in cache), with ``m_t`` the running maximum, and
``S = sum_k exp(z_k - m)``, rescaled whenever the maximum grows (the online softmax). The second writes the
gradient from that buffer:

.. math::

    g_k = (C\\,e_k e^{m_t - m} / S - B\\,uw_k)\\,d_k \\quad (k \\ne y), \\qquad
    g_y = (C\\,p_y - B\\,uw_y - T)\\,d_y,

with ``m`` the row maximum, ``L = log S``, ``lse = m + L``, ``d = 1`` without soft-capping, and the
coefficients of :func:`labelsmooth.kernels._core.row_terms` (``C = C_0 + r 2 lambda lse``, ``B``, ``T``),
each rounded once to the output dtype; ``g_y`` is formed in double, so that confident rows keep their target
gradient (``p_y - (1 - a)`` cancels). One ``exp`` per logit (glibc's vector ``expf``, within 1 ulp), and
one more with soft-capping: with ``q = exp(-2 |z / c|)``, ``tanh = sign(z) (1 - q) / (1 + q)`` and
``1 - tanh^2 = 4 q / (1 + q)^2``, the latter accurate where the logit saturates (``1 - t * t`` in float32,
the eager pass's formula, cancels to 0 from ``|z / c| ~ 9`` on). Sums are float32
vector sums within a tile, accumulated across tiles in double; the loss is formed in double from ``m``, ``S``,
``z_y`` and ``zu``.

The kernel never allocates: each calling thread keeps a workspace of ``2 V`` floats and one per tile
between calls (grown when a longer row comes; 2 MB for ``V = 256000``), since a fresh mapping per block
would page-fault on every call.

Rows holding an ``inf`` or ``nan`` logit are not computed in C (it is built with ``-ffast-math``, which
assumes finite values): the kernel flags them and :func:`labelsmooth.kernels._stream.stream_loss_grad` sends
them through the eager pass, so that every row gets the eager maths' result there.

When it is used (``LABELSMOOTH_NATIVE``, read at each call): ``auto`` (the default) for CPU tensors of dtype
bfloat16 and float32 when the kernel can be built (float16 and float64 take the eager pass); ``0`` never;
``1`` as ``auto``, but a kernel that cannot be built raises instead of falling back. The kernel is
compiled on first use with the C compiler (``$CC``, else ``cc``; about half a second) into
``$LABELSMOOTH_CACHE_DIR`` (default ``~/.cache/labelsmooth``; a ``labelsmooth-<uid>`` folder of the
temporary folder if that one is not writable), keyed by the source, the flags, the compiler and the CPU,
and loaded from there by later processes. ``-march=native`` ties the library to this CPU's instruction set,
hence the CPU in the key. Without a compiler, or if the build fails, a ``RuntimeWarning`` says so once and
every block takes the eager pass.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shlex
import shutil
import subprocess
import tempfile
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from .._validation import check_choice

ENV = "LABELSMOOTH_NATIVE"
MODES = ("auto", "0", "1")
SOURCE = Path(__file__).with_name("_rows.c")
# Columns of Coefficients.table, in the order _rows.c reads them.
COLUMNS = ("C0", "B", "T", "A1", "A3", "cc", "Zc", "Zl")
ABI = 4
# Soft-capping values the kernel takes (it forms z / c and c tanh(z / c) in float32); others: the eager pass.
SOFTCAP_RANGE = (1e-30, 1e30)
_DTYPES = {torch.float32: 0, torch.bfloat16: 1}  # _rows.c's LS_F32, LS_BF16

_LIB: ctypes.CDLL | None = None
_FAILED = False
_REASON = ""
_LOCK = threading.Lock()
_FUNCS: dict[str, ctypes._CFuncPtr] = {}  # type: ignore[name-defined]


def mode() -> str:
    """The value of ``LABELSMOOTH_NATIVE`` (``"auto"`` when unset).

    Raises
    ------
    ValueError
        Any other value than ``auto``, ``0`` or ``1``.
    """
    value = os.environ.get(ENV, "auto").strip().lower()
    check_choice(ENV, value, MODES)
    return value


def wanted(z: torch.Tensor, p=None) -> bool:
    """Whether the streaming pass over ``z`` (M, V) with :class:`RowParams` ``p`` takes the C kernel.

    Raises
    ------
    RuntimeError
        ``LABELSMOOTH_NATIVE=1`` and the kernel cannot be built (the reason is in the message).
    """
    if z.device.type != "cpu" or z.dtype not in _DTYPES:
        return False
    if p is not None and p.softcap is not None and not SOFTCAP_RANGE[0] <= p.softcap <= SOFTCAP_RANGE[1]:
        return False  # z / c or c tanh(z / c) would leave float32's normal range: the eager pass
    m = mode()
    if m == "0":
        return False
    lib = _library()
    if lib is None and m == "1":
        raise RuntimeError(f"{ENV}=1, but the C row kernel could not be built: {_REASON}")
    return lib is not None


def _compiler() -> list[str] | None:
    """``$CC`` split as a shell would (``"gcc -m64"`` keeps its flag), else ``cc``, ``gcc`` or ``clang``."""
    env = shlex.split(os.environ.get("CC", ""))
    found = shutil.which(env[0]) if env else None
    if found:
        return [found, *env[1:]]
    for name in ("cc", "gcc", "clang"):
        found = shutil.which(name)
        if found:
            return [found]
    return None


def _arch_flags() -> list[str]:
    machine = platform.machine().lower()
    if machine in ("x86_64", "amd64", "i686", "i386"):
        return ["-march=native"]
    if machine in ("aarch64", "arm64"):
        return ["-mcpu=native"]
    return []


def _cpu_key() -> str:
    """What ``-march=native`` depends on: the CPU's model and feature flags (Linux), else the platform."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
        keys = ("flags", "Features", "model name")
        lines = [ln for ln in text.splitlines() if ln.split(":")[0].strip() in keys]
        return "\n".join(sorted(set(lines)))
    except OSError:
        return platform.processor() + platform.machine()


def cache_dir() -> Path:
    """Where the built kernel lives: ``$LABELSMOOTH_CACHE_DIR``, else ``$XDG_CACHE_HOME/labelsmooth``, else
    ``~/.cache/labelsmooth``."""
    env = os.environ.get("LABELSMOOTH_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "labelsmooth"


def _private_dir(path: Path, others: int) -> Path:
    """``path``, created if needed (mode 0o700), after checking that this user owns it and that its mode has
    none of the write bits ``others`` (0o002 for the cache folder, 0o022 in the shared temporary folder):
    the library found there is loaded into the process.

    Raises
    ------
    OSError
        The folder cannot be created or read.
    RuntimeError
        Another user owns it, or others may write to it.
    """
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    st = path.stat()
    if hasattr(os, "getuid") and (st.st_uid != os.getuid() or st.st_mode & others):
        raise RuntimeError(f"{path} is not a private folder of this user (owner {st.st_uid}, mode "
                           f"{oct(st.st_mode & 0o777)}); not loading code from it")  # fmt: skip
    return path


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _build(cc: list[str], flags: list[str], out: Path) -> None:
    """Compile ``_rows.c`` into ``out``: -ffast-math at compile time only (linking with it would add
    crtfastmath.o, which sets flush-to-zero for the whole process). The library is written under a temporary
    name, flushed to disk and renamed, then its SHA-256 is written next to it (``out.sha256``, also renamed
    into place): :func:`_load` loads only a file that matches it, so a truncated or half-written library (a
    crash, a full disk) is rebuilt rather than mapped (mapping one can kill the process with SIGBUS)."""
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".build-") as tmp:
        obj = Path(tmp) / "rows.o"
        lib = Path(tmp) / out.name
        compile_cmd = [*cc, "-O3", "-ffast-math", "-fPIC", *flags, "-c", str(SOURCE), "-o", str(obj)]
        link_cmd = [*cc, "-shared", str(obj), "-o", str(lib), "-lm"]
        for cmd in (compile_cmd, link_cmd):
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
            if res.returncode != 0:
                lines = (res.stderr or res.stdout).strip().splitlines()
                first = next((ln for ln in lines if "error" in ln.lower()), lines[0] if lines else "")
                raise RuntimeError(f"`{' '.join(cmd)}` failed (exit {res.returncode}): {first.strip()}")
        if not lib.is_file() or lib.stat().st_size == 0:
            raise RuntimeError(f"`{' '.join(link_cmd)}` exited 0 but wrote no library")
        with open(lib, "rb") as f:
            os.fsync(f.fileno())
        digest = Path(tmp) / "digest"
        digest.write_text(_digest(lib))
        os.replace(lib, out)
        os.replace(digest, out.with_name(out.name + ".sha256"))


def _intact(path: Path) -> bool:
    """Whether ``path`` is a library :func:`_build` finished (its digest file matches it)."""
    try:
        return path.with_name(path.name + ".sha256").read_text().strip() == _digest(path)
    except OSError:
        return False


def _load() -> ctypes.CDLL:
    cc = _compiler()
    if cc is None:
        raise RuntimeError("no C compiler found ($CC, cc, gcc or clang)")
    version = subprocess.run([*cc, "--version"], capture_output=True, text=True, timeout=30).stdout
    uid = os.getuid() if hasattr(os, "getuid") else 0
    last: Exception | None = None
    for flags in (_arch_flags(), []):
        key = hashlib.sha256(
            b"\0".join([SOURCE.read_bytes(), " ".join(flags).encode(), version.encode(), _cpu_key().encode()])
        ).hexdigest()[:16]
        name = f"rows-{key}.so"
        try:
            try:  # the cache folder; the temporary folder's labelsmooth-<uid> if that one cannot be written
                path = _private_dir(cache_dir(), 0o002) / name
                if not _intact(path):
                    _build(cc, flags, path)
            except OSError:
                path = _private_dir(Path(tempfile.gettempdir()) / f"labelsmooth-{uid}", 0o022) / name
                if not _intact(path):
                    _build(cc, flags, path)
            lib = ctypes.CDLL(str(path))
            if lib.labelsmooth_abi() != ABI:  # pragma: no cover - a stale file under the same key
                raise RuntimeError(f"{path} has ABI {lib.labelsmooth_abi()}, expected {ABI}")
            return lib
        except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
            last = exc
            if not flags:
                break
    raise RuntimeError(str(last))


def _library() -> ctypes.CDLL | None:
    """The loaded kernel, built on first use; ``None`` (after one warning) if it cannot be built."""
    global _LIB, _FAILED, _REASON
    if _LIB is not None or _FAILED:
        return _LIB
    with _LOCK:
        if _LIB is None and not _FAILED:
            try:
                lib = _load()
                p, i64, i32, f64 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int, ctypes.c_double
                fn = lib.labelsmooth_rows
                fn.restype = i64
                fn.argtypes = (i32, p, i64, i64, i64, p, i64, p, p, p, p, i64, f64, *(p,) * 5)
                _FUNCS["rows"] = fn
                ws = lib.labelsmooth_workspace
                ws.restype, ws.argtypes = i64, (i64,)
                _FUNCS["workspace"] = ws
                _LIB = lib
            except Exception as exc:  # no compiler, a failed build, a library that does not load
                _FAILED = True
                _REASON = f"{type(exc).__name__}: {exc}"
                warnings.warn(
                    f"labelsmooth: building the C row kernel failed ({_REASON}); using the eager pass. "
                    f"Set {ENV}=0 to skip the attempt.",
                    RuntimeWarning,
                    stacklevel=3,
                )
    return _LIB


@dataclass
class Coefficients:
    """Per-row constants of the whole problem, computed once per call.

    ``table`` (M, 8) float32 holds, per row, ``C0 = r ((1-a) w_y + a c)``, ``B = r a``, ``T = r (1-a) w_y``,
    ``A1 = (1-a) w_y``, ``A3 = a`` (0 when not smoothing or ignored), ``cc = c`` (``sum_k uw_k``),
    ``Zc = 2 lambda r`` and ``Zl = lambda`` (the z-loss weight), in the order of :data:`COLUMNS`. ``uw`` is as
    in :class:`labelsmooth.kernels._core.RowParams` (float32, contiguous), ``safe`` int64 and ``valid``
    uint8, both contiguous; ``cap`` the soft-capping ``c`` (0: none).
    """

    safe: torch.Tensor
    valid: torch.Tensor
    table: torch.Tensor
    uw: torch.Tensor | None
    cap: float


def coefficients(p) -> Coefficients:
    """The :class:`Coefficients` of a :class:`labelsmooth.kernels._core.RowParams`."""
    M = p.safe.shape[0]
    f32 = torch.float32

    def col(x) -> torch.Tensor:
        if isinstance(x, torch.Tensor):
            return x.to(f32).expand(M) if x.dim() == 0 else x.to(f32)
        return torch.full((M,), float(x), dtype=f32)

    a, wy, r = col(p.alpha), p.wy.to(f32), p.scale.to(f32)
    cc = col(p.c)
    if not p.smooth:
        a = torch.zeros(M, dtype=f32)
    one_minus = (1 - a) * wy
    table = torch.stack(
        [
            r * (one_minus + a * cc),
            r * a,
            r * one_minus,
            one_minus,
            torch.where(p.valid, a, 0.0),
            cc,
            r * (2 * p.z_loss),
            torch.full((M,), float(p.z_loss), dtype=f32),
        ],
        1,
    ).contiguous()
    uw = p.uw.to(f32).contiguous() if p.uw is not None else None
    cap = float(p.softcap) if p.softcap is not None else 0.0
    return Coefficients(p.safe.contiguous(), p.valid.contiguous().view(torch.uint8), table, uw, cap)


_THREAD = threading.local()


def _workspace(V: int) -> torch.Tensor:
    """This thread's scratch for rows of ``V`` logits (two row buffers and the tiles' maxima), kept between
    calls and grown when a longer row comes: the kernel itself never allocates."""
    need = int(_FUNCS["workspace"](V))
    buf = getattr(_THREAD, "work", None)
    if buf is None or buf.numel() < need:
        buf = torch.empty(need, dtype=torch.float32)
        _THREAD.work = buf
    return buf


def run_rows(
    z: torch.Tensor,
    grad: torch.Tensor | None,
    k: Coefficients,
    s: int,
    e: int,
    losses: torch.Tensor,
    stats: tuple[torch.Tensor, torch.Tensor] | None,
) -> torch.Tensor:
    """Rows ``s:e`` of ``z`` (M, V) through the C kernel; returns the indices (in ``s:e``) of the rows it left
    for the eager pass (those holding ``inf`` or ``nan``; usually none).

    ``grad`` (M, V) of ``z``'s dtype (may be ``z``: in place) or ``None`` (loss only); ``losses`` (M,) and
    ``stats`` ``(lse, correct)`` (M,) float32 / bool receive rows ``s:e``. Rows of ``z`` and ``grad`` must
    have unit stride along classes.
    """
    fn = _FUNCS["rows"]
    V = z.shape[1]
    bad = torch.empty(e - s, dtype=torch.uint8)
    uw, lduw = k.uw, 0
    uw_ptr = None
    if uw is not None:
        if uw.dim() == 2:
            uw_ptr, lduw = uw[s].data_ptr(), uw.stride(0)
        else:
            uw_ptr = uw.data_ptr()
    zb = z[s]
    nbad = fn(
        _DTYPES[z.dtype],
        zb.data_ptr(),
        e - s,
        V,
        z.stride(0),
        grad[s].data_ptr() if grad is not None else None,
        grad.stride(0) if grad is not None else 0,
        k.safe[s:].data_ptr(),
        k.valid[s:].data_ptr(),
        k.table[s].data_ptr(),
        uw_ptr,
        lduw,
        k.cap,
        losses[s:].data_ptr(),
        stats[0][s:].data_ptr() if stats is not None else None,
        stats[1][s:].data_ptr() if stats is not None else None,
        bad.data_ptr(),
        _workspace(V).data_ptr(),
    )
    return bad.nonzero().view(-1) + s if nbad else bad.new_empty(0, dtype=torch.long)
