"""The one exception type a user is meant to see.

`InputError` carries a single human sentence saying what is wrong and where (a path, a tag,
a column). The CLI prints it on one line and exits non-zero; anything else is a bug and is
reported as such. Messages never contain patient identifiers: name the file, not the patient.
"""


class InputError(Exception):
    """Bad input a user can fix: missing path, unreadable file, inconsistent series, ...

    Raised by every stage when what it was given cannot be used; the message names the
    offending path or field and, where one exists, the command that makes the missing input.
    """
