"""check_beam_args against real Beam: known options pass through, anything else is named."""

import gc
import subprocess
import sys

import pytest

from kalm_data.beam_options import (
    InvalidBeamOptionError,
    UnknownFlagError,
    beam_help_epilog,
    check_beam_args,
)

OWN = ["-h", "--help", "--input", "--output", "--config", "--num-negatives", "--margin", "--seed"]


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--runner=DirectRunner"],
        ["--runner", "DirectRunner"],
        ["--direct_num_workers", "2"],
        ["--direct_num_workers=2", "--direct_running_mode=multi_processing"],
        ["--save_main_session"],
        ["--temp_location", "gs://b/t"],
        ["--runner", "DataflowRunner", "--project", "P", "--region", "R", "--temp_location=gs://b"],
        ["--experiments=a", "--experiments", "b"],
        ["--update_compatibility_version"],  # nargs="?" option without its value
    ],
)
def test_known_options_pass_through_unchanged(args):
    before = list(args)
    assert check_beam_args(args, OWN) is args
    assert args == before


def test_dask_runner_options_are_known():
    pytest.importorskip("dask")
    args = [
        "--runner",
        "apache_beam.runners.dask.dask_runner.DaskRunner",
        "--dask_client_address",
        "x",
        "--dask_connection_timeout=5",
    ]
    assert check_beam_args(args, OWN) == args


def test_typo_of_own_flag_suggests_it():
    with pytest.raises(UnknownFlagError) as err:
        check_beam_args(["--num-negativs", "3"], OWN)
    assert str(err.value) == "unrecognized argument --num-negativs (did you mean --num-negatives?)"
    assert err.value.unknown == ("--num-negativs",)
    assert isinstance(err.value, ValueError)


def test_equals_spelling_and_underscore_typo():
    with pytest.raises(UnknownFlagError, match=r"--num_negatives \(did you mean --num-negatives\?"):
        check_beam_args(["--runner=DirectRunner", "--num_negatives=3"], OWN)


def test_unknown_flag_with_value_is_named_value_is_not():
    with pytest.raises(UnknownFlagError, match="unrecognized argument --decontaminate") as err:
        check_beam_args(["--decontaminate", "x"], OWN)
    assert err.value.unknown == ("--decontaminate",)
    assert "'x'" not in str(err.value)


def test_typo_of_beam_flag_suggests_beam_flag():
    with pytest.raises(UnknownFlagError, match=r"did you mean --direct_num_workers\?"):
        check_beam_args(["--direct_num_worker", "2"], OWN)


def test_no_suggestion_when_nothing_is_close():
    with pytest.raises(UnknownFlagError) as err:
        check_beam_args(["--zzqx"], OWN)
    assert str(err.value) == "unrecognized argument --zzqx"


@pytest.mark.parametrize(
    "args",
    [["foo"], ["--runner", "DirectRunner", "foo"], ["--save_main_session", "foo"]],
)
def test_stray_positional_is_an_error(args):
    with pytest.raises(UnknownFlagError) as err:
        check_beam_args(args, OWN)
    assert str(err.value) == "unexpected argument 'foo'"
    assert err.value.unknown == ("foo",)


def test_several_unknowns_are_all_named():
    args = ["--num-negativs", "3", "--runner", "DirectRunner", "--decontaminate", "x"]
    args += ["--runer=DirectRunner", "stray"]
    with pytest.raises(UnknownFlagError) as err:
        check_beam_args(args, OWN)
    msg = str(err.value)
    assert err.value.unknown == ("--num-negativs", "--decontaminate", "--runer", "stray")
    assert "--num-negativs (did you mean --num-negatives?)" in msg
    assert "unrecognized argument --decontaminate" in msg
    assert "--runer (did you mean --runner?)" in msg
    assert "unexpected argument 'stray'" in msg


def test_everything_after_double_dash_is_stray():
    with pytest.raises(UnknownFlagError) as err:
        check_beam_args(["--", "--runner", "DirectRunner"], OWN)
    assert err.value.unknown == ("--", "--runner", "DirectRunner")


@pytest.mark.parametrize(
    "args",
    [["--direct_num_workers", "x"], ["--runner"], ["--save_main_session=1"]],
)
def test_malformed_known_option_raises_instead_of_exiting(args):
    with pytest.raises(InvalidBeamOptionError):
        check_beam_args(args, OWN)


def test_options_class_defined_by_user_code_counts():
    from apache_beam.options.pipeline_options import PipelineOptions

    class _Base(PipelineOptions):
        @classmethod
        def _add_argparse_args(cls, parser):
            parser.add_argument("--kalm_test_base")

    class _Nested(_Base):  # a subclass of a subclass: found by the recursive walk
        @classmethod
        def _add_argparse_args(cls, parser):
            parser.add_value_provider_argument("--kalm_test_nested", type=int)

    try:
        args = ["--kalm_test_base", "a", "--kalm_test_nested=3"]
        assert check_beam_args(args, OWN) == args
    finally:
        del _Base, _Nested
        gc.collect()  # unregister them: __subclasses__ holds weak references only


def test_help_epilog_is_text_and_imports_no_beam():
    text = beam_help_epilog()
    for example in (
        "--runner apache_beam.runners.dask.dask_runner.DaskRunner",
        "--direct_num_workers 2 --direct_running_mode multi_processing",
        "--runner DataflowRunner --project P --region R --temp_location gs://",
        "https://beam.apache.org/documentation/runners/",
    ):
        assert example in text
    code = (
        "import sys; from kalm_data.beam_options import beam_help_epilog; beam_help_epilog(); "
        "sys.exit('apache_beam' in sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
