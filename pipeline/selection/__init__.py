"""Recipe choices made on the validation split, by a command anyone can re-run (``python -m pipeline.selection``).

A *study* (``studies.yaml``) names a profile, the networks a candidate trains, what scores it and how the winner
is picked; each *candidate* is a set of params values laid over the profile. Every candidate runs the profile's
DVC stage commands in ``data/runs/selection/<study>/<candidate>/`` with ``evaluate.split: val``; candidates share
the study's preprocessed data (``data/runs/selection/<study>/data``), so only the first one preprocesses. A
candidate that already finished with the same params (its own run, one run apart with ``--candidates`` in another
process, or another study's on the same data) is scored again, not retrained. The
table goes to ``metrics/<profile>/selection/<study>.json`` and ``.md``. The test split is never read.

Scopes:

* ``layout``: preprocess the study's data once (``<study>/base/``), then train the Layout GAN only; score its
  recurrence over the validation clips (``pipeline.evaluation.layouts``: layout mIoU, limbs IoU, person IoU per
  frame index).
* ``full``: train all three networks and run the evaluate stage on the validation split
  (``metrics/eval.json``: REMOT's self-pair scores, motion included).
* ``wcn``: train the WCN only, on Layout and Region GANs trained once per study with the profile's own recipe
  (``data/runs/selection/<study>/base/``); then evaluate as ``full``.
"""
