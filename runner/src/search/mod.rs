//! Search spaces and samplers (pure computation; no I/O).
