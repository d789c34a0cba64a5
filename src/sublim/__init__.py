"""Subliminal."""
