"""Dataset cards: ``kalm-data card DIR`` describes a ``curate`` output for the Hugging Face Hub.

    kalm-data card out/            # writes out/README.md and out/card/*.png

The card is built from ``DIR/manifest.json`` and the shards in ``DIR/data/`` only:

- ``stats``: per-task statistics of the shards (lengths, scores, ranks), pure numbers;
- ``language``: a script-based guess of each task's language;
- ``funnel``: the manifest's counts as funnel steps (read, rejected per reason, kept);
- ``plots``: PNG charts of those numbers (matplotlib, Agg, imported when a plot is drawn);
- ``front_matter``: the YAML header the Hub and ``datasets.load_dataset`` read;
- ``command``: the ``kalm-data curate`` command that rebuilds the output;
- ``markdown``: escaping data text, tables and numbers;
- ``task_section`` and ``render``: the README.md text;
- ``write``: ``write_card``, which ties them together and writes the files atomically;
- ``cli``: the ``card`` subcommand (import-light).
"""
