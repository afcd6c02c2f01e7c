"""Measure capabilities."""
