"""Improve capabilities."""
