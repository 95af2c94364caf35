"""Benchmarks: flask-lucia against Flask-Login and bare Flask, measured in one run."""
