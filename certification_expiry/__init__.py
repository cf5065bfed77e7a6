"""Pauses peer mentors whose certification has expired. Entry points live in main.py."""
