"""HTTP service for longisynth (BentoML). Adapts HTTP ↔ engine; no simulation logic here."""
