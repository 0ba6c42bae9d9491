"""Training of the three REMOT GAN stages (paper 3.3): Layout GAN and Region GAN separately, then the Whole
Composition Network on the Region GAN's outputs.

``runner.run_stage`` is the one code path; ``flow`` wraps it as the Prefect flow ``remot`` (deployment
``train``) and ``stages/train_*.py`` as DVC stages. Checkpoints: ``state``; losses: ``steps``; loader
position: ``data``; sample grids: ``grid``.
"""
