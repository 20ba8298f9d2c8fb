"""Placeholder until the training CLI lands (helper-2 replaces this file)."""


def register(sub) -> None:
    return None
