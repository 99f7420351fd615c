"""The one error type a user can cause: its message always names the fix."""


class PrefrlError(Exception):
    """Bad input or a bad run directory. The CLI prints the message alone, with no stack trace."""
