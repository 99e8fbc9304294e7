"""User-facing errors: bad input that the user can fix.

Every error raised for bad data files, impossible flags or an unusable output folder is a
:class:`UserError`. The command line prints its message (which names the file, flag or value
and says what to do) and exits with status 2; it never shows a traceback from inside NumPy.
"""


class UserError(Exception):
    """Bad input the user can fix; the CLI prints it and exits with status 2."""


class DataError(UserError):
    """A data file is missing, corrupt, truncated or fails its checksum."""


class ConfigError(UserError):
    """A flag or configuration value is impossible."""
