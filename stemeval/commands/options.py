"""Option types the commands share: whole numbers with a least value, and seeds, whose
bad values are argparse's one-line usage error naming the option ("argument --seed:
takes ..."), never a traceback from the library the value reaches."""

import argparse

SEED_LIMIT = 2 ** 32  # numpy's and scikit-learn's seeds lie in [0, 2**32)


def whole_number(text, minimum=0, limit=None):
    """``int(text)`` when it is a whole number in [minimum, limit), else the usage error."""
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < minimum or (limit is not None and value >= limit):
        below = f" and below {limit}" if limit is not None else ""
        raise argparse.ArgumentTypeError(f"takes a whole number of {minimum} or more{below}, "
                                         f"not {text!r}")
    return value


def positive(text):
    return whole_number(text, minimum=1)


def non_negative(text):
    return whole_number(text, minimum=0)


def seed(text):
    """A random seed: 0 to 2**32 - 1."""
    return whole_number(text, minimum=0, limit=SEED_LIMIT)
