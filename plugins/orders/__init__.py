"""Order management: the demo domain shipped with Eventscope, and the model plugin to copy.

One concern per module, each importing nothing from Eventscope but ``core.api``:

- ``events``: the event catalogue — every event type and the shape of its data;
- ``state``: what an order's or a customer's stream folds into (``@evolver``);
- ``commands``: the commands and their invariants (``@command``, ``Rejected``);
- ``upcasters``: reading OrderPlaced events written in the old schema (``@upcaster``);
- ``projections``: the read models ``order_summary`` (v1 and v2), ``customer_stats``
  and ``daily_revenue`` (``Projection``, ``@handles``);
- ``demo``: a deterministic history made by simulated shoppers (``@demo_history``).
"""
