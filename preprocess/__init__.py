"""Preprocessing: raw ECG corpora (PTB-XL, PhysioNet 2021, CODE-15%, MIMIC-IV-ECG, WFDB folders) to HDF5 shards."""
