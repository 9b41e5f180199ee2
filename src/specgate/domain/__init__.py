"""Business rules over the ports: no HTTP, no backend queries."""
