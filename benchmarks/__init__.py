"""How well and how fast: synthetic organisation, benchmark runners, scorers, reports."""
