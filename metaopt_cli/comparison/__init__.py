"""`metaopt compare`: a sweep's runs read back, grouped over seeds, as one table and one picture."""
