"""Errors that are the user's to fix: the CLI prints them as one line and exits with code 2."""

from __future__ import annotations


class UserError(Exception):
    """Bad input (a config, a spec, a path): reported as one line, exit code 2, no traceback."""


class ConfigError(UserError):
    """The experiment config is unreadable or invalid."""


class RunDirError(UserError):
    """The run directory cannot be used (in use, made by another config, unreadable)."""


class ModelUnavailableError(UserError, RuntimeError):
    """A model cannot be found or loaded here (a package or extra is missing); the message
    says how to fix it."""
