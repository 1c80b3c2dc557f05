"""Fails the tickets whose export messages ended in the dead-letter queue."""
