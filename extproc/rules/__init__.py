"""Threat intelligence: IP lists, signature sets, CEL rule expressions and signed rule bundles."""
