"""The ``kalm-data`` command. Parsing is import-light so ``kalm-data --help`` answers instantly.

kalm-data curate --input pairs.jsonl.gz --output out/
kalm-data train --data out/ --model Qwen/Qwen2-0.5B --output model/
kalm-data eval --model model/ --beir scifact/
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading


def _build_parser() -> argparse.ArgumentParser:
    from kalm_data import __version__
    from kalm_data.card.cli import register as register_card
    from kalm_data.curate.cli import register as register_curate
    from kalm_data.export.cli import register as register_export
    from kalm_data.generate.cli import register as register_generate
    from kalm_data.synthesize.cli import register as register_synthesize
    from kalm_data.train.cli import register as register_train

    parser = argparse.ArgumentParser(
        prog="kalm-data",
        description="Build training data for text-embedding models the KaLM way, and train on it.",
    )
    parser.add_argument("--version", action="version", version=f"kalm-data {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    register_curate(sub)
    register_generate(sub)
    register_synthesize(sub)
    register_train(sub)
    register_card(sub)
    register_export(sub)
    return parser


#: Commands whose process ends with ``os._exit`` when run as a program: with torch and pyarrow
#: both loaded, their native thread pools race at interpreter teardown and abort the process
#: now and then ("terminate called without an active exception": 2 of 15 runs of a script
#: that only imports torch and reads an empty shard). Everything is flushed first. ``curate``
#: may run its Beam workers as threads of this process (``--direct_running_mode in_memory`` or
#: ``multi_threading``): after Ctrl-C they are still encoding, and only a hard exit ends the
#: process at once (a normal exit aborted, as above).
HARD_EXIT_COMMANDS = ("train", "eval", "curate")


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code (see ``HARD_EXIT_COMMANDS``)."""
    code, command = _main(argv)
    if argv is None and command in HARD_EXIT_COMMANDS:
        sys.stdout.flush()
        sys.stderr.flush()
        logging.shutdown()
        os._exit(code)
    return code


def _main(argv: list[str] | None) -> tuple[int, str]:
    """(exit code, command) of one command line."""
    parser = _build_parser()
    args, beam_args = parser.parse_known_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if beam_args and not getattr(args, "accepts_beam_args", False):
        parser.error(f"unrecognized arguments: {' '.join(beam_args)}")
    try:
        with _interruptible():
            return int(args.func(args, beam_args) or 0), args.command
    except KeyboardInterrupt:
        _error(args.command, "interrupted; the previous output is untouched")
        return 130, args.command
    except Exception as e:
        message, code = _one_line(e)
        if message is None:
            raise
        _error(args.command, message)
        return code, args.command


@contextlib.contextmanager
def _interruptible():
    """SIGINT and SIGTERM raise ``KeyboardInterrupt`` while a command runs, even when the
    process was started with SIGINT ignored (a background job of a script inherits that), so
    ``kill -INT`` and Ctrl-C always stop a run; the previous handlers come back afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = {s: signal.signal(s, interrupt) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _one_line(error: Exception) -> tuple[str | None, int]:
    """(message, exit code) for errors shown without a traceback; (None, 0) for a bug."""
    from pydantic import ValidationError

    from kalm_data.errors import KalmDataError, validation_message

    if isinstance(error, KalmDataError):
        return str(error), error.exit_code
    if isinstance(error, ValidationError):
        return validation_message(error), 2
    return None, 0


def _error(command: str, message: str) -> None:
    logging.getLogger("kalm_data").debug("error in %s", command, exc_info=True)
    print(f"kalm-data {command}: error: {message}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
