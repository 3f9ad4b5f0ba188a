"""Classification datasets, loaded whole into memory as standardised train/val/test tensor splits."""
