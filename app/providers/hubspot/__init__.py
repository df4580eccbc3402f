"""The HubSpot adapter: one client (client.py) for push and pull, the mapping, the provider."""
