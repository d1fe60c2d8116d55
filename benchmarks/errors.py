"""The errors a user sees as one line: every layer may raise them, the CLI prints them."""


class UsageError(Exception):
    """Bad input from the user: printed as a message, never as a traceback."""


class Interrupted:
    """Ctrl-C and SIGTERM, remembered. CPython loses an exception that a signal handler
    raises while a finalizer runs (a ``__del__`` the garbage collector called just then),
    so the handler also sets a flag, and the runner's loops ``check`` it at every poll: an
    interrupt stops the run however it arrives."""

    flag = False

    @classmethod
    def handler(cls, signum, frame) -> None:
        cls.flag = True
        raise KeyboardInterrupt

    @classmethod
    def check(cls) -> None:
        if cls.flag:
            raise KeyboardInterrupt
