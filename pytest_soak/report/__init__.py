"""Rendering of results: failure text, terminal summary, JSON, HTML."""
