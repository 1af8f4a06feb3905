"""Segments: the condition tree, its text language, and the reference evaluator."""
