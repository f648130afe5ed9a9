"""Webhooks to partner systems."""
