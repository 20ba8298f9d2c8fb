"""Thin Beam shells (PTransforms and DoFns) around the pure cores. Metrics go to namespace
``kalm_data``; rejected records leave every stage on the tagged output ``rejected``."""

NAMESPACE = "kalm_data"
REJECTED = "rejected"
