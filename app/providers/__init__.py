"""CRM adapters: one interface (base.py), one package or module per CRM, and the registry."""
