"""Interpret capabilities."""
