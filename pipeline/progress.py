"""Progress bars that show only on a terminal: a redirected log gets the stages' summary lines, not tqdm frames."""
from __future__ import annotations

from tqdm import tqdm


def progress(total: int, desc: str, unit: str, quiet: bool = False, **kw) -> tqdm:
    """A tqdm bar on stderr; off with `quiet`, and off by itself when stderr is not a terminal."""
    return tqdm(total=total, desc=desc, unit=unit, disable=True if quiet else None, **kw)
