"""CODE-15 %: the six ECG abnormalities its cardiologist-reviewed labels mark (Ribeiro et al.).

An exam marked with none of them is a negative for all six; ``normal_ecg`` is stored as a
label too but is not a class of the benchmark.
"""

CLASSES = ["1dAVb", "AF", "LBBB", "RBBB", "SB", "ST"]
TASKS = ("abnormalities",)
