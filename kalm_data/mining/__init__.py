"""Hard-negative mining and ranking-consistency filtering, per task pool (pure cores).

One task flows through: ``pool.build_pool`` -> ``rank.rank_task`` (FAISS via ``search``, scores
via ``scores.dot``) -> ``consistency.judge`` -> ``assemble.assemble`` (negatives via
``negatives.draw``), all driven by ``params.MiningParams``; ``mine_task.mine_task`` composes them.
"""
