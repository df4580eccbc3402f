"""Ops at scale: batch import, bulk resync, the sync-log and retry API."""
