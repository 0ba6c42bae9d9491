"""End-to-end REMOT inference (paper 3.3, "Inference"): prepare a source image and a driving video
(``prepare``), run Layout GAN -> Region GAN (with GAM) -> WCN with temporal state (``generate``), write the
result as an mp4 (``video_io``); ``transfer`` ties them together for ``remot transfer``."""
