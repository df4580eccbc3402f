"""Webhooks from outside systems: an inbox that stores each event once, and its processors."""
