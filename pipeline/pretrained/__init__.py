"""Third-party pretrained networks, loaded from local weights only: FlowNet2, SCHP, VGG19 and the perceptual
backbone. (The REMOT networks themselves are ``remot_models``.)"""
