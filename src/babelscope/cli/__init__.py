"""Command-line verbs; each module defines ``VERBS``."""
