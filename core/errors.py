"""Errors a user can fix: the CLI prints their message (no stack trace) and exits with code 2."""


class ZooError(Exception):
    """Base class of every error caused by a user's input, configuration or environment."""


class DatasetError(ZooError):
    """A dataset could not be found, read or verified."""


class ConfigError(ZooError):
    """A config file, flag or setting names something that does not exist or does not fit."""


SHOWN_CHARACTERS = 200


def shown(value, limit: int = SHOWN_CHARACTERS) -> str:
    """``repr(value)`` for an error message, cut to ``limit`` characters: a message echoes what
    it refuses, but never megabytes of it."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"
