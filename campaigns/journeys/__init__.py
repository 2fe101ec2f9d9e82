"""Journeys: automated campaigns that a customer's behaviour starts and moves through a graph of
steps (waits, branches, messages, updates), each step run exactly once."""
