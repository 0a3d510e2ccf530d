"""Network clients."""
