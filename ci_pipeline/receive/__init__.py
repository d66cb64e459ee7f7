"""Receiving files: the intake steps of one submission (``intake``), the inbox folder watched as
an event source (``inbox``), the HTTP intake API (``api``) and its partners' tokens (``tokens``).
"""
