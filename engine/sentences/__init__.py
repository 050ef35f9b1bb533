"""Sentence stores: encoding texts, searching them by vector, keywords or both, filtering on their fields."""

# hybrid search's defaults (search.py's notes say how the keyword weight was chosen); here, so that
# the CLI's options show them without importing the search module
VECTOR_WEIGHT, KEYWORD_WEIGHT, RRF_K = 1.0, 5.0, 60.0
