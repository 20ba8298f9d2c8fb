"""The quiet console: what reaches a run's log file (``kalm_data.harness.console``)."""

from __future__ import annotations

import logging

from kalm_data.harness.console import RELAY_LOGGER, TYPEHINT_LOGGER, quiet_console


def test_our_records_reach_the_log_and_beam_noise_does_not(tmp_path):
    log_path = tmp_path / "logs" / "run.log"
    before = logging.getLogger().handlers[:]
    with quiet_console(str(log_path)):
        logging.getLogger("kalm_data.mine").info("mine pairs: 10 kept")
        hints = logging.getLogger(TYPEHINT_LOGGER)
        hints.info("Converting string literal type hint to Any: %r", "str")
        hints.warning("a type hint Beam could not use")
        logging.getLogger(RELAY_LOGGER).info("Worker: severity: INFO message: 'twice'")
        print("printed by a library")
    text = log_path.read_text()
    assert "mine pairs: 10 kept" in text and "printed by a library" in text
    assert "a type hint Beam could not use" in text
    assert "Converting string literal" not in text
    assert "twice" not in text
    assert logging.getLogger().handlers == before  # restored on exit
