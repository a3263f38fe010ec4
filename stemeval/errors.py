"""The one exception type whose message is shown to the user as-is, without a traceback."""

import sys


class UserError(Exception):
    """Bad input or set-up: the message is one line saying what is wrong and what to do."""


def run_main(main):
    """Run a command's ``main()``; a UserError becomes one line on stderr and exit status 2."""
    try:
        status = main()
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(status or 0)
