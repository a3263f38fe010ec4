"""Builders the tests share: random models in their real formats, generated stems and
dataset trees, re-creations of the published code, local servers."""
