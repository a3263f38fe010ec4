"""How two labels are compared everywhere: stripped and lower-cased, as the published
scoring script compared them."""


def normalise(value):
    """Return a label stripped and lower-cased (a missing cell counts as empty)."""
    return (value or "").strip().lower()
