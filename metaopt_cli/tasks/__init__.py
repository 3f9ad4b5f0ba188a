"""Tasks: each owns its meta-parameters θ, samples inner problems and evaluates θ."""
