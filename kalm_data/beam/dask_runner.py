"""Beam's Dask runner, with each side input computed once per run.

Why: Beam 2.77's Dask runner (``apache_beam.runners.dask.dask_runner.DaskRunner``) hands a
``ParDo`` its side inputs as the upstream *bags*, which each bundle turns into a list inside
its own task (``DaskBagWindowedIterator``): every bundle that reads a side input computes
that input's whole upstream graph again, outside the graph the runner computes. In ``curate``
the mining step's side inputs (the embedding's tallies, the corpus) and the writer's (the
shard counts) reach back to the reader, so a 600-row run read its input 6 times, embedded
3 times over (later passes found most texts in the cache) and mined its task 3 times.

Contract: ``DaskRunner`` here runs a pipeline exactly as Beam's does, except for a ``ParDo``
with side inputs: each side input's partitions become dependencies of the ``ParDo``'s tasks
in the one graph the runner computes (their keys are the upstream bag's own, so the upstream
runs once and is shared with every other consumer), and a bundle gets the computed lists.
Side-input views (``AsList``, ``AsDict``, ``AsSingleton``, ``AsIter``) behave as before.

``kalm-data`` uses it whenever ``--runner`` names Beam's Dask runner
(``kalm_data.harness.run.resolve_runner``); in your own Beam code pass
``--runner kalm_data.beam.dask_runner.DaskRunner``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
from apache_beam.runners.common import DoFnContext, DoFnSignature, _OutputHandler
from apache_beam.runners.dask.dask_runner import DaskRunner as BeamDaskRunner
from apache_beam.runners.dask.dask_runner import DaskRunnerResult
from apache_beam.runners.dask.transform_evaluator import (
    OneReceiver,
    apply_dofn_to_bundle,
    get_windowed_value,
)
from apache_beam.transforms.sideinputs import SideInputMap
from dask._task_spec import List, Task, TaskRef
from dask.bag import Bag
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph


def _windowed(partitions: list[list], window_fn) -> list:
    """The computed partitions of a side input -> its elements as windowed values."""
    return [get_windowed_value(x, window_fn) for x in itertools.chain.from_iterable(partitions)]


@dataclass(frozen=True)
class _ParDoSpec:
    """What a bundle of a ``ParDo`` needs, picklable: the ``DoFn``, the arguments with their
    side-input placeholders, the main input's windowing and, per side input, its view
    (class, options, window mapping)."""

    fn: beam.DoFn
    label: str
    args: tuple
    kwargs: dict
    window_fn: Any
    views: tuple


def _bundle(items, spec: _ParDoSpec, *computed) -> list:
    """Run one bundle of the ``ParDo`` of ``spec`` on ``items``, its side inputs ``computed``
    (per side input, its partitions, computed by the graph). The output receivers are made
    here, per bundle: a receiver shared by bundles run in one process would pass each
    bundle's output on again with the next one's."""
    receivers = OneReceiver()
    handler = _OutputHandler(
        window_fn=spec.window_fn,
        main_receivers=receivers[None],
        tagged_receivers=receivers,
        per_element_output_counter=None,
        output_batch_converter=None,
        process_yields_batches=False,
        process_batch_yields_elements=False,
    )
    sides = [
        SideInputMap(view_class, options, _windowed(parts, window_fn))
        for (view_class, options, window_fn), parts in zip(spec.views, computed, strict=True)
    ]
    invoker_kwargs = dict(
        context=DoFnContext(spec.label, state=None),
        side_inputs=sides,
        input_args=list(spec.args),
        input_kwargs=spec.kwargs,
        user_state_context=None,
        bundle_finalizer_param=beam.DoFn.BundleFinalizerParam(),
    )
    invoker_args = [DoFnSignature(spec.fn), handler]
    return apply_dofn_to_bundle(items, invoker_args, invoker_kwargs, receivers)


def _par_do(applied, bags: dict) -> Any:
    """The bag of ``applied`` (a ``ParDo`` with side inputs), each side input's partitions
    referenced by key as dependencies of every bundle (see module docstring).

    The layer is built by hand, not with ``Bag.map_partitions``: a blockwise layer hides a
    reference nested in its arguments from dask's layer fusion, which then fuses the side
    input's upstream away and the run ends with a missing key."""
    main = next(iter(applied.main_inputs.values()))
    window_fn = main.windowing.windowfn if hasattr(main, "windowing") else None
    windowed = bags[main.producer].map(get_windowed_value, window_fn)
    args, kwargs = applied.transform.raw_side_inputs
    views = tuple((type(s), s._view_options(), s._window_mapping_fn) for s in applied.side_inputs)
    spec = _ParDoSpec(
        applied.transform.fn, applied.transform.label, tuple(args), kwargs, window_fn, views
    )
    sides = [bags[s.pvalue.producer] for s in applied.side_inputs]
    refs = [List(*(TaskRef((b.name, i)) for i in range(b.npartitions))) for b in sides]
    name = f"par-do-{tokenize(applied.full_label, windowed.name, *(b.name for b in sides))}"
    layer = {
        (name, n): Task(
            (name, n),
            _bundle,
            TaskRef((windowed.name, n)),
            spec,
            *refs,
        )
        for n in range(windowed.npartitions)
    }
    graph = HighLevelGraph.from_collections(name, layer, dependencies=[windowed, *sides])
    return Bag(graph, name, windowed.npartitions)


class _Result(DaskRunnerResult):
    """Beam's Dask result, which also closes the run's client once the run has ended (Beam's
    leaves it open: it then retries the scheduler for 30 s after the cluster is gone)."""

    def wait_until_finish(self, duration=None) -> str:
        try:
            return super().wait_until_finish(duration)
        finally:
            if duration is None:
                self.client.close()


class DaskRunner(BeamDaskRunner):
    """Beam's Dask runner with side inputs computed once (module docstring), and its client
    closed at the end of the run."""

    def run_pipeline(self, pipeline, options) -> _Result:
        result = super().run_pipeline(pipeline, options)
        return _Result(result.client, result.futures)

    @staticmethod
    def to_dask_bag_visitor(bag_kwargs=None):
        visitor = BeamDaskRunner.to_dask_bag_visitor(bag_kwargs)
        beams_visit = visitor.visit_transform

        def visit_transform(applied) -> None:
            if applied.side_inputs and isinstance(applied.transform, beam.ParDo):
                visitor.bags[applied] = _par_do(applied, visitor.bags)
            else:
                beams_visit(applied)

        visitor.visit_transform = visit_transform
        return visitor
