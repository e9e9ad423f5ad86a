"""Many runs and their figures: reads only the output tables."""
