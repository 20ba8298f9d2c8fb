"""The run harness shared by every pipeline.

- ``run``: ``Job`` and ``execute`` (check, lock, stage, run, count, commit, manifest);
- ``progress``: worker counts through files, one live status line;
- ``console``: logs to ``OUTPUT/logs/``, the console kept for progress and the funnel.

The output folder's ownership, lock and manifest are in ``kalm_data.writers`` (``commit``,
``lock``, ``manifest``).
"""
