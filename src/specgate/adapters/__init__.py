"""Concrete backends behind the ports in ``ports``; only ``runtime.app`` chooses among them."""
