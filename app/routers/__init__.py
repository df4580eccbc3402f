"""HTTP routes: thin, each parses, authenticates and calls one service function."""
