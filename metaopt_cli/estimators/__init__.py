"""Meta-gradient estimators. Each takes a sampled Problem and the meta-parameters and returns
(an estimate of) dL/dθ plus metrics, knowing nothing about which task it serves."""
