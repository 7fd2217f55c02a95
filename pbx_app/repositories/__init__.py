"""Repositories: SQL only, no product rules. Each function takes an open Connection."""
