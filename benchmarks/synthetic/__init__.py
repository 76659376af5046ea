"""A seeded synthetic organisation: CERT r6.2-style logs, LANL-style auth and ground truth.

>>> from benchmarks.synthetic import generate, GenerationSummary
"""

from benchmarks.synthetic.generator import GENERATOR_VERSION, GenerationSummary, generate

__all__ = ["GENERATOR_VERSION", "GenerationSummary", "generate"]
