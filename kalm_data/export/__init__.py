"""``kalm-data export``: curated task shards written in another trainer's format.

One module per target format, each a pure ``Target`` (``target.py``):

- ``to_sentence_transformers``: a dataset folder per task (``anchor``, ``positive``,
  ``negative_1..n``) and ``prompts.json``, for ``SentenceTransformerTrainer``;
- ``to_flagembedding``: JSONL per task with FlagEmbedding's documented fields;
- ``to_kalm``: JSONL per task as the KaLM-Embedding training code reads it.

Around them: ``source`` reads DIR (manifest and shards, through the trainer's schema),
``files`` writes one task file, ``output`` guards OUT (refusal, staging, atomic commit and the
export.json record), ``run`` wires these together and ``cli`` holds the flags.
"""
