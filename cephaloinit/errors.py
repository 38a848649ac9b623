"""The one exception that ends the program, and the exit codes we choose ourselves."""

EXIT_OK = 0
EXIT_FAILURE = 1  # our own error: bad input, failed validation, a dead child


class Fatal(Exception):
    """Stop with this message and exit code; caught only in cli.main."""

    def __init__(self, message: str, code: int = EXIT_FAILURE):
        super().__init__(message)
        self.code = code
