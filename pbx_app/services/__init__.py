"""Services: the product's rules as plain functions, tested without HTTP."""
