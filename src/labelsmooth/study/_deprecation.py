"""Old spellings of the study's Python API, kept one release: one warning, said one way."""

from __future__ import annotations

import warnings


def warn_renamed(old: str, new: str, *, stacklevel: int = 3) -> None:
    """Warn that ``old`` is spelled ``new`` now (a :class:`DeprecationWarning` pointing at the caller's
    caller by default: the code that used the old spelling).

    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as w:
    ...     warnings.simplefilter("always")
    ...     warn_renamed("alpha", "label_smoothing", stacklevel=1)
    >>> print(w[0].category.__name__, w[0].message)
    DeprecationWarning `alpha` is deprecated: use `label_smoothing` (the old name goes in the next release).
    """
    warnings.warn(
        f"`{old}` is deprecated: use `{new}` (the old name goes in the next release).",
        DeprecationWarning,
        stacklevel=stacklevel,
    )
