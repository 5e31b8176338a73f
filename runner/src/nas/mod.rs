//! Cerebros-style network construction and training (pure computation; no I/O).
