"""The stages of sgmft: extract (stage one), fit (stage two), report and predict."""
