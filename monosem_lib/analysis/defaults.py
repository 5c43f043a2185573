"""Evaluation defaults: one place for the sample counts and windows every measurement uses.

The metrics, the interpretation report, the chapters and the live widgets read these, so a
number measured in one place matches the same number measured in another.
"""

from __future__ import annotations

__all__ = ["EVAL_SAMPLES", "LOSS_WINDOW"]

EVAL_SAMPLES = 2**14
"""Fresh evaluation samples behind every reported loss and activity fraction."""

LOSS_WINDOW = 16
"""Training steps averaged into a loss read off a training curve at a checkpoint."""
