"""Accept or refuse an upload."""

import settings


def accept(size: int) -> bool:
    """Whether an upload of ``size`` bytes is allowed."""
    return size <= settings.LIMITS.
