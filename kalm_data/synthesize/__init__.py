"""``kalm-data synthesize``: generate and curate as one Beam job (no files glued in between)."""
