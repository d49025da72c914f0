"""The kernel library: all of cellops' logic, plain Python.

Never imports IPython, ipywidgets or traitlets (a test asserts it), so everything a magic does is
callable from scripts, pipelines and papermill.
"""
