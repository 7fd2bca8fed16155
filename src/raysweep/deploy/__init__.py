"""After the sweep: the champion as a model directory (`export`) and scoring data with it (`predict`)."""
