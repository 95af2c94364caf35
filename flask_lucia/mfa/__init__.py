"""TOTP and recovery codes (DESIGN §15): the second factor, its pages and its CLI command."""
