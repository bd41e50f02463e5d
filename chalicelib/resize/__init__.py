"""The resize path: a URL's size and key in, a stored variant and its public URL out.

``grammar`` parses size tokens and keys; ``signing`` checks URL signatures;
``request`` applies the policy before any I/O; ``ledger`` names what is
stored for each original; ``variants`` claims, renders and stores a variant;
``service`` runs the flow.
"""

__all__ = ["grammar", "ledger", "request", "service", "signing", "variants"]
