"""ipywidgets views and live displays; only imported by magics (never by kernels_lib)."""
