"""`make fuzz`: schemathesis over the running service's own OpenAPI document."""
