"""Time travel: read-model references, state at a point, and (later) comparison."""
