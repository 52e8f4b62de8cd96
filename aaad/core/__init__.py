"""The pure core: counting, periods, plans and rating. No I/O, no clock, stdlib only."""
