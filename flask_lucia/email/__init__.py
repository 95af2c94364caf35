"""Email (DESIGN §13): verification, password reset, changing the password or address,
deleting the account, and the security notices every feature sends (``plugin``)."""
