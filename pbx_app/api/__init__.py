"""HTTP layer: request validation, status codes, authentication. No product rules here."""
