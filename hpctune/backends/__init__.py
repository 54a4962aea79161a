"""Backends drive the Controller: ``mpi`` (coordinator + worker ranks) and ``local`` (in-process).

This package imports no MPI at import time: mpi4py is loaded only when the MPI backend runs.
"""
