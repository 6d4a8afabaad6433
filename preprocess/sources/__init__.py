"""One reader per source layout. Each module offers

    list_items(input_dir, rate_hz) -> (items, rejections)   # from the source's index files
    read_item(item) -> RawRecord                             # in a worker process

``SOURCES`` maps the command-line name to its reader.
"""

from preprocess.sources import code15, code_test, mimic_iv_ecg, ptbxl, wfdb_folder

SOURCES = {
    "ptbxl": ptbxl,
    "physionet2021": wfdb_folder,
    "code15": code15,
    "code-test": code_test,
    "mimic-iv-ecg": mimic_iv_ecg,
    "wfdb": wfdb_folder,
}
