"""The exit codes and the one exception that means "the user gave us something we cannot use"."""

EXIT_OK = 0
EXIT_FAILED = 1  # a check ran and failed (e.g. onnxruntime disagrees with PyTorch)
EXIT_USAGE = 2  # bad input: one line on stderr, no traceback
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C


class InspectorError(Exception):
    """A user or input error: `main()` prints it as one line and exits with code 2.

    Raise it with a message that names the thing and the cause, e.g.
    ``InspectorError("checkpoint model.pt: 3 missing keys: conv.weight, ...")``.
    """

    exit_code = EXIT_USAGE

    def __str__(self) -> str:
        # Exporter and onnxruntime messages can span lines; the contract is one line.
        return " ".join(super().__str__().split())
