"""kalm-data: training data for text-embedding models, the KaLM-Embedding way.

Import cost is kept near zero: heavy libraries (torch, faiss, apache_beam, transformers) are
imported inside the functions that need them.
"""

__version__ = "0.1.0"
