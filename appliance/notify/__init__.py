"""Alerts and their delivery: the alert book, email and webhooks, the daily digest."""
