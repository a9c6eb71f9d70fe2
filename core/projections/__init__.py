"""Projections: definitions (what plugins write) and folding them into read models."""
