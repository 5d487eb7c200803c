"""Activities: thin adapters between the journey workflow and the outside world.

The ledger (journey events, lead projection, routing state) in SQL; notifications by log
or webhook; the policy store.
"""
