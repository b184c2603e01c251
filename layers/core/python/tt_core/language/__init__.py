"""Language helpers shared by the domains: text normalisation and structured calls to a language model."""
