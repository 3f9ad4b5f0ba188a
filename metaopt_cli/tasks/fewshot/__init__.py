"""Few-shot learning: MAML and Prototypical Networks on N-way K-shot episodes."""
