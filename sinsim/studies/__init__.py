"""Figures and analyses of runs and sweeps: reads only the output tables (through `tables`)."""
