"""Procedural and template-based phantoms: the embedded default scans of the demo and the tests."""
