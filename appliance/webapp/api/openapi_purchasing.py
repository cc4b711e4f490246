"""Issue 6: filled in."""
