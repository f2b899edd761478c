"""Adapters to other ecosystems, each an optional extra.

- :mod:`labelsmooth.integrations.transformers` (``pip install "labelsmooth[transformers]"``): patch a
  Hugging Face causal language model so its loss is :func:`labelsmooth.linear_cross_entropy` (no N x V
  logits), and a ``compute_loss_func`` for ``Trainer`` that replaces ``label_smoothing_factor``.

Importing this package imports none of them; import the submodule you need.
"""
