"""The `crm-sync` command (main.py), one module per group of subcommands."""
