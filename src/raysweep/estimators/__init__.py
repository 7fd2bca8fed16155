"""Model families outside PyTorch: scikit-learn, LightGBM and XGBoost, fitted in rounds and reported.

`contract.Family` is what a family provides (fit, predict, save and load in its native format);
`registry.FAMILIES` names the built-in ones; `rounds.run` fits a family in a trial and reports
like the PyTorch loop does (a boosted family every `rounds_per_epoch` rounds, so ASHA can stop a
weak booster early; the others once, at the full budget); `checkpoint` is how a fitted model is
kept. The libraries are imported by the family that uses them, when it fits or loads, so a spec's
validation and a trial of one family load none of the others. This layer imports no Ray.
"""
