"""API models (pydantic v2) for the operator's custom resources; CRDs are generated from them."""
