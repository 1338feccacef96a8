"""The tests, a package so every tier imports its helpers as ``tests.support.*`` (no sys.path edits)."""
