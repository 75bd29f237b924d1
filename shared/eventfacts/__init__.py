"""What Azure was found to raise as ARM events, and the probe events that found it out."""
