"""The layout stage: 18 ATR classes merged into REMOT's 6 regions (paper 3.1), background plates, QA sheets."""
