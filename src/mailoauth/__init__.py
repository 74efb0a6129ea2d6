"""mailoauth."""
