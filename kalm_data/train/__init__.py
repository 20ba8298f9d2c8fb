"""Contrastive training of embedding models on curated task shards (``kalm-data train``).

One concept per file: ``config`` (settings), ``data`` (shards -> rows), ``sampler``
(semi-homogeneous batches), ``batch`` (texts and targets), ``pooling``, ``encoder`` (the model),
``losses/`` (one loss per file), ``loop`` (the training loop), ``checkpoint`` (resume, soup),
``evaluate`` (BEIR metrics), ``export`` (sentence-transformers folder), ``distributed`` (DDP),
``cli`` (flags). ``cli`` and ``config`` import no torch, so ``kalm-data --help`` stays instant.
"""
