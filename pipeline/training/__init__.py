"""Training of the three REMOT networks (paper 3.3): Layout GAN and Region GAN separately, then the Whole
Composition Network on the Region GAN's outputs.

``runner.train_network`` is the one code path (set-up, the loop, its loss-log/progress/checkpoint hooks);
``pipeline.orchestration.flow`` wraps it as the Prefect flow ``remot`` (deployment ``train``) and ``stage`` as the
DVC stages train_layout/train_region/train_wcn. Losses per network: ``steps``; optimisers and their schedule:
``optimisation``; loader position: ``data``; resume rules: ``resume``; sample grids: ``grid``; checkpoints:
``pipeline.core.checkpoint``.
"""
