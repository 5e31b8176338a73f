//! Thunderline bridge contracts and a typed client of the Cerebros runner.
