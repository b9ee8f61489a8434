"""End-to-end tasks: load -> analyse -> build -> fit -> write artefacts.

Each module (``reverb``, ``match``, ``style``, ``align``, ...) exposes plain functions that take
paths and settings and return a result dataclass; they never parse arguments or print, so a task
called from Python gives the same result as the shell command.
"""
