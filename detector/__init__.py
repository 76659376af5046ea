"""The engine: the Pipeline shared by scan, daemon and bench; alerts, explanations, risk, CLI."""

__version__ = "0.1.0"
