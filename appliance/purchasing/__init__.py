"""Reorder rules and their trigger, purchase orders from draft to received."""
