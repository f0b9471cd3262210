"""One exception type for mistakes a user can fix.

The CLI prints its message as a single line and exits with status 2; the studio shows it as a
notice. Anything else that escapes is a bug and is allowed to show a traceback.
"""


class UserError(Exception):
    """A problem with the user's input or files, stated in one line that says how to fix it."""
