"""Serving: discrete-event simulation of LLM inference engines."""
