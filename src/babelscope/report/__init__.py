"""Report capabilities."""
