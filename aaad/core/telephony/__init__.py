"""Telephony: destination rates, call pricing and call limits (DESIGN §5). Pure: no I/O."""
