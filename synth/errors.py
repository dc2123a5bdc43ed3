"""Errors that end a run with a message a user can act on (the CLI prints them without a traceback)."""


class SynthError(Exception):
    """A failure the user can fix: its message says what is wrong and what to do."""


class ConfigError(SynthError):
    """The config is malformed: the message names the place, what was expected, what was found."""
