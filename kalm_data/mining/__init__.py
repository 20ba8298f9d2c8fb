"""Hard-negative mining and ranking-consistency filtering, per task pool (pure cores)."""
