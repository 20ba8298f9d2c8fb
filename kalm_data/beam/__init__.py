"""Thin Beam shells (PTransforms and DoFns) around the pure cores. Runner metrics go to
namespace ``kalm_data``; the counts the manifest reports travel in the data
(``kalm_data.beam.counts``).

Stages emit kept elements, ``RejectedRecord``s and ``Tally``s on one output; ``SplitRejected``
separates the kept elements from the reports (rejections and tallies, which travel together to
``WriteRejected``) with two filters. (Multi-output ParDos would do the same, but Beam's Dask
runner routes tagged outputs wrongly, and every stage must run on every runner.)
"""

import apache_beam as beam

NAMESPACE = "kalm_data"


def is_report(x) -> bool:
    """True for what is not a kept element: a ``RejectedRecord`` or a ``Tally``."""
    from kalm_data.beam.counts import Tally
    from kalm_data.records import RejectedRecord

    return isinstance(x, (RejectedRecord, Tally))


class SplitRejected(beam.PTransform):
    """A mixed PCollection -> (kept elements, reports: ``RejectedRecord``s and ``Tally``s)."""

    def expand(self, mixed):
        kept = mixed | "Kept" >> beam.Filter(lambda x: not is_report(x))
        rejected = mixed | "Rejected" >> beam.Filter(is_report)
        return kept, rejected


def only_rejected(reports):
    """The ``RejectedRecord``s among ``reports`` (tallies dropped): for a caller that wants a
    stage's rejections alone, e.g. to check them."""
    from kalm_data.records import RejectedRecord

    return reports | "OnlyRejected" >> beam.Filter(lambda r: isinstance(r, RejectedRecord))
