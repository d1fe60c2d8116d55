"""The errors a user sees as one line: every layer may raise them, the CLI prints them."""


class UsageError(Exception):
    """Bad input from the user: printed as a message, never as a traceback."""
