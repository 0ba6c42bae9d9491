"""The ``evaluate`` stage (paper 4.2, 4.4): the trained REMOT against simple baselines on each dataset's test
split, with SSIM, PSNR, Mask-SSIM, Mask-PSNR, LPIPS, FID and TCM (``pipeline.metrics``).

Modules: ``data`` (test videos and the evaluation pairs), ``baselines`` (copy-source, GAM-only), ``run`` (the
stage library: generate, score, write metrics/eval.json, the per-video table and sample videos), ``ablation``
(the paper's Tables 3-4 from ``dvc exp show --json``).
"""
