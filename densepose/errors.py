"""One exception type for user mistakes: the CLI prints it as one line, without a traceback."""


class UserError(Exception):
    """Bad input from the user (a missing file, a malformed record, a bad option).

    The message must name the file or record and say what is wrong; `densepose` prints it as
    ``error: <message>`` and exits with status 2.
    """
