"""A seeded synthetic organisation: CERT r6.2-style logs, LANL-style auth and ground truth.

>>> from benchmarks.synthetic import generate, GenerationSummary
"""

from benchmarks.synthetic.generator import (
    GENERATOR_VERSION,
    MIN_DAYS,
    GenerationSummary,
    generate,
)
from benchmarks.synthetic.org import MAX_USERS, MIN_USERS

__all__ = [
    "GENERATOR_VERSION",
    "MAX_USERS",
    "MIN_DAYS",
    "MIN_USERS",
    "GenerationSummary",
    "generate",
]
