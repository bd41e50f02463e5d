"""On-demand image resizing: grammar, policy, imaging and storage for the Chalice app."""
