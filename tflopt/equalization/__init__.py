"""Cross-layer equalization (the ``equalize`` pass): finding the op pairs whose channels may be
rescaled (``pairs``), the per-channel clamp that lets a RELU6 pair be rescaled (``clamp``), and
bias absorption from calibration ranges (``absorb``)."""
