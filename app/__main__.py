"""`python -m app ...` is `crm-sync ...`."""

from app.cli.main import main

main()
