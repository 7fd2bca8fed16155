"""Results -> tables, rankings, plots and reports. Imports Ray's result readers, never starts Ray."""
