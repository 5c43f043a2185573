"""The library's version, and the version of the numbers it produces.

Kept in a module of its own so that storage and the CLI can read them without importing the
package ``__init__`` (which pulls in every module).
"""

__version__ = "0.1.0"

# Bump when a change alters what training or measurement produce for a given config (a new
# sampler, optimizer step, metric...). Stored summaries record it; ``--resume`` and the book's
# staleness checks compare it, and ``tests/test_golden.py`` fails when the numbers of a fixed
# small run change while this stays the same. Refactors that keep the numbers leave it alone.
RESULTS_VERSION = 1
