"""Shared math as pure functions on tensors; never imports a paper."""
