"""Commands: definitions (what plugins write) and the bus that runs them."""
