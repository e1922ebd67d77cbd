"""Errors a user can act on: the CLI prints them as one line, without a traceback."""


class SgmftError(Exception):
    """A problem with the user's input or environment, worded so that they can fix it."""


class CacheError(SgmftError):
    """A file that is not a valid sgmft feature cache, or one that does not fit the request."""


class SgmftWarning(UserWarning):
    """Something a user should know about a result that is still produced; the CLI shows it as one line."""
