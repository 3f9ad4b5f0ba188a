"""Backbone networks, each built as `Backbone(in_shape, num_outputs, **hyperparameters)`.

Every backbone is safe to use functionally (`torch.func.functional_call`, `vmap`, nested
`grad`): no module updates buffers in place during forward. `num_outputs=None` drops the
linear head, leaving an embedding network whose output width is `feature_dim`.
"""
