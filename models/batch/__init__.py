"""Batch detectors: fitted on a matrix of entity-window feature vectors, then score rows."""
