"""Verification of a project's node set.

``verify`` runs ``scan`` (a stdlib-only script run by the project's Python) and checks the
workflows with ``check`` and ``graph``; ``result`` is what it returns.
"""
