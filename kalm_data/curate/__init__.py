"""The ``curate`` pipeline: input pairs -> mined, filtered, task-sharded Parquet.

- ``config``: ``CurateConfig``, every setting (flags and YAML are generated from it);
- ``cli``: the ``kalm-data curate`` command;
- ``stages``: the stage list every input row goes through;
- ``pipeline``: ``build`` (the Beam graph) and ``run`` (a job on ``kalm_data.harness.run``).

Importing this package is light (no Beam): the CLI's ``--help`` imports it.
"""
