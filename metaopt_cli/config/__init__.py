"""Structured-config schemas: each YAML option in `conf/` starts from one of these, so a
misspelled key or a value of the wrong type fails when the config is composed."""
