"""Thin Beam shells (PTransforms and DoFns) around the pure cores. Metrics go to namespace
``kalm_data``.

Stages emit kept elements and ``RejectedRecord``s on one output; ``SplitRejected`` separates
them with two filters. (Multi-output ParDos would do the same, but Beam's Dask runner routes
tagged outputs wrongly, and every stage must run on every runner.)
"""

import apache_beam as beam

NAMESPACE = "kalm_data"


def _is_rejected(x) -> bool:
    from kalm_data.records import RejectedRecord

    return isinstance(x, RejectedRecord)


class SplitRejected(beam.PTransform):
    """A mixed PCollection -> (kept elements, ``RejectedRecord``s)."""

    def expand(self, mixed):
        kept = mixed | "Kept" >> beam.Filter(lambda x: not _is_rejected(x))
        rejected = mixed | "Rejected" >> beam.Filter(_is_rejected)
        return kept, rejected
