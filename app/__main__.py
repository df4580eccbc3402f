"""`python -m app ...` is `crm-sync ...`."""

from app.cli import main

main()
