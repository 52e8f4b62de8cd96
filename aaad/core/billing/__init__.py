"""The money lifecycle, pure: billing cycles, recurring charges, pro-rata, taxes, balances.

Money is an integer count of 1/10,000 of the currency unit; instants are
POSIX seconds; local dates follow the configured zone. Nothing here reads a
clock or a database (DESIGN §7).
"""
