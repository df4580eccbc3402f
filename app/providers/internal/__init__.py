"""The internal CRM: this service's own crm_* tables (models.py) and the provider that writes
them, one module per table family."""
