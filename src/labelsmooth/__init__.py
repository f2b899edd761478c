"""labelsmooth: label smoothing for PyTorch, exact and fast, with honest measurements."""

__version__ = "0.1.0"

__all__ = ["__version__"]
