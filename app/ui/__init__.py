"""The ops dashboard at /ui: server-rendered pages (Jinja2 + htmx) over the ops service
functions the JSON API uses, behind an ops-key sign-in."""
