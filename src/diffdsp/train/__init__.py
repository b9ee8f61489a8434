"""Learned controllers trained with Lightning (extra ``[train]``; imported lazily).

Each module (``match``, ``style``, ``timbre``) holds a LightningModule and its on-the-fly data;
shared trainer construction lives in ``_common``.
"""
