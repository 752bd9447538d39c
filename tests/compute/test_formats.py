"""Readers for every localisation format, checked against independent reads of the real files."""

from __future__ import annotations

import csv
import json
import pickle
import shutil
import struct
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from config import DATA_DIR

from compute.formats import (DETECTION_EXTENSIONS, FORMAT_LABELS, FormatError, PixelSizeRequired,
                                     detect_format, read_localisations)

DATA = DATA_DIR

THUNDERSTORM = DATA / "thunderstorm" / "LacY-eYFP_Ecoli_01_storm.csv"
FGFR1 = DATA / "csv" / "FGFR1_MCF7_AF647_4.csv"
DETECTIONS = DATA / "ground_truth" / "Scenario2_normal_50_single_DetectionList_1.csv"
MOLECULES = DATA / "ground_truth" / "Scenario2_normal_50single_MoleculeList_1_groundtruth.csv"
TUBULINS = DATA / "ground_truth" / "tubulins1_00020_groundtruth.csv"
EGFR = DATA / "picasso" / "egfr_mols.hdf5"
RAW_MOVIE = DATA / "picasso" / "raw_movie_locs.hdf5"
SMAP_MAT = DATA / "smap" / "smap_dstorm_data.mat"
DECODE = DATA / "decode" / "decode_dstorm_data.h5"
RAPIDSTORM = DATA / "rapidstorm" / "rapidSTORM_dstorm_data.txt"
SMLM = DATA / "smlm" / "SMLM_dstorm_data.smlm"


def csv_columns(path: Path) -> dict[str, np.ndarray]:
    """Independent read with the csv module: header name (stripped) -> float column."""
    with open(path, newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.reader(handle, skipinitialspace=True))
    return {name.strip(): np.array([float(row[i]) for row in rows[1:]]) for i, name in enumerate(rows[0])}


def picasso_locs(path: Path) -> np.ndarray:
    with h5py.File(path, "r") as h5:
        return h5["locs"][()]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def assert_clear(err: pytest.ExceptionInfo, file_name: str, *, column: str | None = None,
                 line: int | None = None) -> None:
    """The message names the file, the column or line, and contains a fix."""
    message = str(err.value)
    assert message.startswith(file_name)
    assert "Fix:" in message
    if column is not None:
        assert err.value.column == column and f"column '{column}'" in message
    if line is not None:
        assert err.value.line == line and f"line {line}" in message


# --- every real file ---------------------------------------------------------------------------------

@pytest.mark.parametrize("path, fmt, count", [
    (THUNDERSTORM, "thunderstorm", 29_995), (FGFR1, "generic_csv", 4_457), (DETECTIONS, "generic_csv", 2_423),
    (MOLECULES, "generic_csv", 600), (TUBULINS, "generic_csv", 49), (EGFR, "picasso", 4_230),
    (RAW_MOVIE, "picasso", 2_399), (SMAP_MAT, "smap_mat", 4_884), (DECODE, "decode_h5", 96),
    (RAPIDSTORM, "rapidstorm", 14), (SMLM, "smlm", 10),
], ids=lambda value: value.name if isinstance(value, Path) else None)
def test_real_file_format_and_count(path, fmt, count):
    assert detect_format(path) == fmt
    table = read_localisations(path)
    assert len(table) == count and table.n_dropped == 0
    assert table.source_format == fmt and fmt in FORMAT_LABELS
    assert table.x.dtype == np.float64 and np.isfinite(table.xy).all()
    if table.frame is not None:
        assert table.frame.dtype == np.int64 and table.frame.min() >= 0


def test_thunderstorm_columns_match_raw_and_frames_become_zero_based():
    raw = csv_columns(THUNDERSTORM)
    table = read_localisations(THUNDERSTORM)
    np.testing.assert_array_equal(table.x, raw["x [nm]"])
    np.testing.assert_array_equal(table.y, raw["y [nm]"])
    np.testing.assert_array_equal(table.frame, raw["frame"].astype(np.int64) - 1)
    np.testing.assert_array_equal(table.precision, raw["uncertainty_xy [nm]"])
    np.testing.assert_array_equal(table.photons, raw["intensity [photon]"])
    assert table.precision_source == "uncertainty_xy [nm]" and table.z is None and table.channel is None


def test_generic_csv_keeps_values_and_frames_as_written():
    raw = csv_columns(FGFR1)
    table = read_localisations(FGFR1)
    np.testing.assert_array_equal(table.x, raw["x"])
    np.testing.assert_array_equal(table.frame, raw["frame"].astype(np.int64))
    np.testing.assert_array_equal(table.precision, raw["uncertainty"])


def test_detection_list_error_column_is_the_precision():
    raw = csv_columns(DETECTIONS)
    table = read_localisations(DETECTIONS)
    np.testing.assert_array_equal(table.y, raw["y"])
    np.testing.assert_array_equal(table.precision, raw["error"])
    assert table.frame is None and table.precision_source == "error"


def test_two_unnamed_columns_are_x_and_y():
    with open(MOLECULES, newline="") as handle:
        rows = list(csv.reader(handle))[1:]
    table = read_localisations(MOLECULES)
    np.testing.assert_array_equal(table.x, [float(r[0]) for r in rows])
    np.testing.assert_array_equal(table.y, [float(r[1]) for r in rows])
    assert table.precision is None and table.frame is None


def test_epfl_ground_truth_with_leading_spaces_and_xnano():
    raw = csv_columns(TUBULINS)
    table = read_localisations(TUBULINS)
    np.testing.assert_array_equal(table.x, raw["xnano"])
    np.testing.assert_array_equal(table.z, raw["znano"])
    np.testing.assert_array_equal(table.frame, raw["frame"].astype(np.int64))


def test_picasso_pixels_scaled_by_the_yaml_pixel_size():
    locs = picasso_locs(EGFR)
    table = read_localisations(EGFR)
    np.testing.assert_allclose(table.x, locs["x"].astype(float) * 130)
    np.testing.assert_allclose(table.y, locs["y"].astype(float) * 130)
    expected = np.sqrt((locs["lpx"].astype(float) ** 2 + locs["lpy"].astype(float) ** 2) / 2) * 130
    np.testing.assert_allclose(table.precision, expected)
    np.testing.assert_allclose(table.photons, locs["photons"])
    # molecule file: frame is a mean over merged localisations, not a frame number
    assert table.frame is None and any("frame" in w for w in table.warnings)


def test_picasso_integer_frames_are_kept_zero_based():
    locs = picasso_locs(RAW_MOVIE)
    table = read_localisations(RAW_MOVIE)
    np.testing.assert_array_equal(table.frame, locs["frame"].astype(np.int64))
    np.testing.assert_allclose(table.x, locs["x"].astype(float) * 130)


def test_picasso_file_pixel_size_wins_over_a_different_user_value():
    table = read_localisations(RAW_MOVIE, pixel_size_nm=100)
    np.testing.assert_allclose(table.x, picasso_locs(RAW_MOVIE)["x"].astype(float) * 130)
    assert any("130" in w and "100" in w for w in table.warnings)


def test_picasso_without_yaml_needs_a_pixel_size(tmp_path):
    staged = shutil.copy(RAW_MOVIE, tmp_path / "raw_movie_locs.hdf5")
    with pytest.raises(PixelSizeRequired) as err:
        read_localisations(staged)
    assert_clear(err, "raw_movie_locs.hdf5")
    assert "pixel size" in str(err.value)
    table = read_localisations(staged, pixel_size_nm=107)
    np.testing.assert_allclose(table.x, picasso_locs(RAW_MOVIE)["x"].astype(float) * 107)
    assert table.warnings == []


def test_picasso_yaml_found_by_the_users_file_name(tmp_path):
    staged = shutil.copy(RAW_MOVIE, tmp_path / "upload_0001.hdf5")
    shutil.copy(RAW_MOVIE.with_suffix(".yaml"), tmp_path / "raw_movie_locs.yaml")
    table = read_localisations(staged, display_name="raw_movie_locs.hdf5")
    np.testing.assert_allclose(table.x, picasso_locs(RAW_MOVIE)["x"].astype(float) * 130)


def test_picasso_pixel_size_from_the_metadata_dataset(tmp_path):
    path = tmp_path / "locs.hdf5"
    locs = np.array([(0, 1.0, 2.0, 0.1, 0.1), (3, 4.0, 5.0, 0.2, 0.2)],
                    dtype=[("frame", "u4"), ("x", "f4"), ("y", "f4"), ("lpx", "f4"), ("lpy", "f4")])
    with h5py.File(path, "w") as h5:
        h5["locs"] = locs
        h5["metadata"] = json.dumps([{"Width": 32, "Pixelsize": None}, {"Pixelsize": 160}])
    table = read_localisations(path)
    np.testing.assert_allclose(table.x, [160.0, 640.0])
    np.testing.assert_allclose(table.precision, [16.0, 32.0], rtol=1e-6)
    np.testing.assert_array_equal(table.frame, [0, 3])


def test_decode_h5_anisotropic_pixels():
    with h5py.File(DECODE, "r") as h5:
        xyz, sig = h5["data/xyz"][()].astype(float), h5["data/xyz_sig"][()].astype(float)
        frame_ix, phot = h5["data/frame_ix"][()], h5["data/phot"][()]
    table = read_localisations(DECODE)
    np.testing.assert_allclose(table.x, xyz[:, 0] * 127)
    np.testing.assert_allclose(table.y, xyz[:, 1] * 117)
    np.testing.assert_allclose(table.z, xyz[:, 2])
    np.testing.assert_allclose(table.precision, np.sqrt(((sig[:, 0] * 127) ** 2 + (sig[:, 1] * 117) ** 2) / 2))
    np.testing.assert_array_equal(table.frame, frame_ix)
    np.testing.assert_allclose(table.photons, phot)


def test_decode_h5_with_empty_sigma_and_nm_units(tmp_path):
    path = tmp_path / "emitters.h5"
    with h5py.File(path, "w") as h5:
        h5["data/xyz"] = np.array([[10.0, 20.0, 1.0], [30.0, 40.0, 2.0]])
        h5["data/xyz_sig"] = h5py.Empty("f4")
        h5["data/frame_ix"] = np.array([0, 5])
        h5["data/phot"] = h5py.Empty("f4")
        h5.create_group("meta").attrs["xy_unit"] = "nm"
        h5.create_group("decode").attrs["version"] = "0.10.0"
    table = read_localisations(path)
    np.testing.assert_array_equal(table.x, [10.0, 30.0])
    assert table.precision is None and table.photons is None


def test_decode_h5_in_pixels_without_px_size_needs_a_pixel_size(tmp_path):
    path = tmp_path / "emitters.h5"
    with h5py.File(path, "w") as h5:
        h5["data/xyz"] = np.array([[1.0, 2.0, 0.0], [3.0, 4.0, 0.0]])
        h5.create_group("meta").attrs["xy_unit"] = "px"
    with pytest.raises(PixelSizeRequired) as err:
        read_localisations(path)
    assert_clear(err, "emitters.h5")
    np.testing.assert_allclose(read_localisations(path, pixel_size_nm=100).y, [200.0, 400.0])


def test_decode_csv_uses_the_json_metadata(tmp_path):
    path = write(tmp_path / "emitters.csv",
                 '# DECODE EmitterSet\n# {"version": "0.10.0"}\n# {"xy_unit": "px", "px_size": [100.0, 110.0]}\n'
                 "# fields not set/null: []\n"
                 "x,y,z,phot,frame_ix,id,x_sig,y_sig,z_sig\n1.5,2.0,30,500,0,0,0.1,0.2,20\n2.5,3.0,40,600,1,1,0.1,0.2,20\n")
    assert detect_format(path) == "decode_csv"
    table = read_localisations(path)
    np.testing.assert_allclose(table.x, [150.0, 250.0])
    np.testing.assert_allclose(table.y, [220.0, 330.0])
    np.testing.assert_allclose(table.precision, [np.sqrt((10.0 ** 2 + 22.0 ** 2) / 2)] * 2)
    np.testing.assert_array_equal(table.frame, [0, 1])


def test_smap_mat_loads_every_row_including_junk_fits():
    with h5py.File(SMAP_MAT, "r") as h5:
        loc = {name: h5["saveloc/loc"][name][()].ravel() for name in ("xnm", "ynm", "frame", "locprecnm", "znm")}
    table = read_localisations(SMAP_MAT)
    np.testing.assert_allclose(table.x, loc["xnm"])
    np.testing.assert_allclose(table.z, loc["znm"])
    np.testing.assert_array_equal(table.frame, loc["frame"].astype(np.int64) - 1)
    np.testing.assert_allclose(table.precision, loc["locprecnm"])
    assert table.precision.max() > 1e6 and table.channel.dtype == np.int64


def test_smap_mat_version_5(tmp_path):
    from scipy.io import savemat
    path = tmp_path / "cell_sml.mat"
    loc = {"xnm": np.array([[100.0, 200.0]]), "ynm": np.array([[5.0, 6.0]]), "frame": np.array([[1.0, 3.0]]),
           "locprecnm": np.array([[10.0, 12.0]])}
    savemat(path, {"saveloc": {"loc": loc}})
    assert detect_format(path) == "smap_mat"
    table = read_localisations(path)
    np.testing.assert_array_equal(table.x, [100.0, 200.0])
    np.testing.assert_array_equal(table.frame, [0, 2])


def test_smap_csv_detected_from_content_and_frames_shifted(tmp_path):
    path = write(tmp_path / "export.csv", "xnm,ynm,znm,frame,locprecnm,phot,bg,layer,xpix,ypix\n"
                                          "1000.5,2000,0,1,9.5,800,3,1,10.005,20\n1100,2100,0,2,8,900,3,1,11,21\n")
    assert detect_format(path) == "smap_csv"
    table = read_localisations(path)
    np.testing.assert_array_equal(table.x, [1000.5, 1100.0])
    np.testing.assert_array_equal(table.frame, [0, 1])
    np.testing.assert_array_equal(table.precision, [9.5, 8.0])


def test_rapidstorm_fields_mapped_by_identifier():
    raw = np.loadtxt(RAPIDSTORM, comments="#")
    table = read_localisations(RAPIDSTORM)
    np.testing.assert_array_equal(table.x, raw[:, 0])
    np.testing.assert_array_equal(table.y, raw[:, 1])
    np.testing.assert_array_equal(table.frame, raw[:, 2].astype(np.int64))


def test_rapidstorm_micrometre_unit_is_scaled(tmp_path):
    header = ('# <localizations insequence="true"><field identifier="Position-0-0" unit="micrometer" />'
              '<field identifier="Position-1-0" unit="micrometer" /><field identifier="ImageNumber-0-0" '
              'unit="frame" /><field identifier="Amplitude-0-0" unit="A/D count" /></localizations>\n')
    path = write(tmp_path / "rapid.txt", header + "1.5 2.5 0 100\n3 4 1 200\n")
    table = read_localisations(path)
    np.testing.assert_allclose(table.x, [1500.0, 3000.0])
    np.testing.assert_allclose(table.y, [2500.0, 4000.0])


def test_smlm_binary_table_matches_a_struct_read():
    with zipfile.ZipFile(SMLM) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        payload = archive.read("table-0.bin")
    spec = manifest["formats"][manifest["files"][0]["format"]]
    codes = {"int8": "b", "float32": "f", "uint32": "I", "float64": "d", "uint8": "B"}
    row_format = "<" + "".join(codes[d] for d in spec["dtype"])
    rows = list(struct.iter_unpack(row_format, payload))
    table = read_localisations(SMLM)
    np.testing.assert_allclose(table.x, [r[spec["headers"].index("position_x")] for r in rows])
    np.testing.assert_allclose(table.y, [r[spec["headers"].index("position_y")] for r in rows])
    np.testing.assert_array_equal(table.frame, [r[spec["headers"].index("frame")] for r in rows])


def test_smlm_with_two_tables_offsets_and_units(tmp_path):
    dtype = np.dtype([("x", "<f4"), ("y", "<f4"), ("frame", "<u4")])
    spec = {"type": "table", "mode": "binary", "columns": 3, "headers": ["x", "y", "frame"],
            "dtype": ["float32", "float32", "uint32"], "shape": [1, 1, 1], "units": ["um", "um", "frame"]}
    files = [{"name": "a.bin", "type": "table", "format": "t", "channel": "a", "rows": 2, "offset": {"x": 10}},
             {"name": "b.bin", "type": "table", "format": "t", "channel": "b", "rows": 1, "offset": {}}]
    path = tmp_path / "two.smlm"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("manifest.json", json.dumps({"format_version": "0.2", "formats": {"t": spec}, "files": files}))
        archive.writestr("a.bin", np.array([(1, 2, 0), (3, 4, 1)], dtype=dtype).tobytes())
        archive.writestr("b.bin", np.array([(5, 6, 2)], dtype=dtype).tobytes())
    table = read_localisations(path)
    np.testing.assert_allclose(table.x, [11_000.0, 13_000.0, 5_000.0])
    np.testing.assert_array_equal(table.channel, [0, 0, 1])
    np.testing.assert_array_equal(table.frame, [0, 1, 2])


# --- detection from content ----------------------------------------------------------------------------

def test_thunderstorm_detected_under_another_extension(tmp_path):
    renamed = shutil.copy(THUNDERSTORM, tmp_path / "results.txt")
    assert detect_format(renamed) == "thunderstorm"
    assert len(read_localisations(renamed)) == 29_995
    assert detect_format(shutil.copy(RAPIDSTORM, tmp_path / "run.dat")) == "rapidstorm"
    assert set(DETECTION_EXTENSIONS) >= {".csv", ".h5", ".hdf5"}


def test_thunderstorm_header_saved_as_one_quoted_field(tmp_path):
    path = write(tmp_path / "storm.csv", '"""id"",""frame"",""x [nm]"",""y [nm]"",""sigma [nm]"",""uncertainty [nm]"""\n'
                                         "1,1,7057.5,31836.9,120,9.5\n2,4,7271.6,31422.4,130,14.6\n")
    assert detect_format(path) == "thunderstorm"
    table = read_localisations(path)
    np.testing.assert_array_equal(table.x, [7057.5, 7271.6])
    np.testing.assert_array_equal(table.frame, [0, 3])
    np.testing.assert_array_equal(table.precision, [9.5, 14.6])   # not the PSF sigma


@pytest.mark.parametrize("text, expected_x", [
    ("x;y;frame\n1,5;2,5;1\n3,5;4,5;2\n", [1.5, 3.5]),                  # semicolon + decimal comma
    ("x\ty\n10\t20\n30\t40\n", [10.0, 30.0]),                            # tab
    ("x y frame\n1 2 3\n  4   5 6\n", [1.0, 4.0]),                       # whitespace
    ("Position_X,Position_Y\n7,8\n9,10\n", [7.0, 9.0]),                  # alias, any case
    ("x (um),y (um)\n1.5,2\n3,4\n", [1500.0, 3000.0]),                   # micrometres
    ("\ufeffx_nm,y_nm\n5,6\n7,8\n", [5.0, 7.0]),                         # BOM
])
def test_generic_delimiters_aliases_and_units(tmp_path, text, expected_x):
    path = write(tmp_path / "locs.csv", text)
    assert detect_format(path) == "generic_csv"
    np.testing.assert_allclose(read_localisations(path).x, expected_x)


def test_pixel_columns_need_and_use_a_pixel_size(tmp_path):
    path = write(tmp_path / "locs.csv", "x [px],y [px],frame\n1.5,2,0\n3,4,1\n")
    with pytest.raises(PixelSizeRequired) as err:
        read_localisations(path)
    assert_clear(err, "locs.csv", column="x [px]")
    np.testing.assert_allclose(read_localisations(path, pixel_size_nm=100).y, [200.0, 400.0])


# --- malformed inputs ----------------------------------------------------------------------------------

def test_empty_file(tmp_path):
    for text in ("", "\n \n"):
        with pytest.raises(FormatError) as err:
            read_localisations(write(tmp_path / "empty.csv", text))
        assert_clear(err, "empty.csv")
        assert "empty" in err.value.problem


def test_header_only(tmp_path):
    with pytest.raises(FormatError) as err:
        read_localisations(write(tmp_path / "header.csv", '"x [nm]","y [nm]"\n'))
    assert_clear(err, "header.csv", line=2)


def test_wrong_delimiter_between_header_and_rows(tmp_path):
    with pytest.raises(FormatError) as err:
        read_localisations(write(tmp_path / "mixed.csv", "x,y,frame\n1;2;1\n3;4;2\n"))
    assert_clear(err, "mixed.csv", line=1)
    assert "delimiter" in str(err.value)


def test_everything_in_one_column(tmp_path):
    with pytest.raises(FormatError) as err:
        read_localisations(write(tmp_path / "pipes.csv", "x|y|frame\n1|2|3\n4|5|6\n"))
    assert_clear(err, "pipes.csv", line=1)
    assert "one column" in str(err.value)


def test_no_x_y_columns_lists_what_was_seen(tmp_path):
    with pytest.raises(FormatError) as err:
        read_localisations(write(tmp_path / "other.csv", "a,b,c\n1,2,3\n"))
    assert_clear(err, "other.csv")
    assert "'a', 'b', 'c'" in str(err.value) and "position_x" in str(err.value)


def test_some_text_rows_are_dropped_and_counted(tmp_path):
    path = write(tmp_path / "junk.csv",
                 "x,y,frame\n1,2,1\nabc,3,1\n\n4,NaN,2\n5,6,3\n7,inf,4\n9,10,5\n11,12,6\n13,14,7\n")
    table = read_localisations(path)
    np.testing.assert_array_equal(table.x, [1, 5, 9, 11, 13])
    assert table.n_dropped == 3
    assert table.warnings == ["dropped 3 rows with missing or non-numeric x/y (lines 3, 5, 7)"]


def test_text_in_most_rows_is_an_error(tmp_path):
    path = write(tmp_path / "text.csv", '"id","frame","x [nm]","y [nm]"\n1,1,abc,2\n2,1,def,3\n3,1,4,5\n')
    with pytest.raises(FormatError) as err:
        read_localisations(path)
    assert_clear(err, "text.csv", column="x [nm]", line=2)
    assert str(err.value).startswith("text.csv, line 2, column 'x [nm]': value 'abc' is not a number")


def test_unknown_unit(tmp_path):
    with pytest.raises(FormatError) as err:
        read_localisations(write(tmp_path / "unit.csv", "x [furlong],y [furlong]\n1,2\n"))
    assert_clear(err, "unit.csv", column="x [furlong]")


def test_unreadable_hdf5(tmp_path):
    path = tmp_path / "broken.h5"
    path.write_bytes(DECODE.read_bytes()[:1200])
    with pytest.raises(FormatError) as err:
        read_localisations(path)
    assert_clear(err, "broken.h5")


def test_unknown_formats(tmp_path):
    h5_path = tmp_path / "other.h5"
    with h5py.File(h5_path, "w") as h5:
        h5["images"] = np.zeros(3)
    zip_path = tmp_path / "book.csv"
    with zipfile.ZipFile(zip_path, "w") as archive:
        archive.writestr("sheet.xml", "<x/>")
    binary = tmp_path / "image.dat"
    binary.write_bytes(b"\x00\x01\x02" * 50)
    for path in (h5_path, zip_path, binary):
        with pytest.raises(FormatError) as err:
            detect_format(path)
        assert_clear(err, path.name)
    with pytest.raises(FormatError):
        read_localisations(FGFR1, fmt="excel")


def test_messages_use_the_display_name_and_survive_pickling(tmp_path):
    staged = write(tmp_path / "staged_7f3a.part", "x,y\n")
    with pytest.raises(FormatError) as err:
        read_localisations(staged, display_name="my cells.csv")
    assert_clear(err, "my cells.csv")
    copy = pickle.loads(pickle.dumps(err.value))
    assert str(copy) == str(err.value) and copy.line == err.value.line
    error = FormatError("data.csv", "value 'abc' is not a number", "remove the text", line=17, column="x [nm]")
    assert str(error) == "data.csv, line 17, column 'x [nm]': value 'abc' is not a number. Fix: remove the text"


def test_fmt_skips_detection():
    table = read_localisations(FGFR1, fmt="thunderstorm")   # forces 1-based frames
    np.testing.assert_array_equal(table.frame, csv_columns(FGFR1)["frame"].astype(np.int64) - 1)


def test_large_quoted_thunderstorm_csv_parses_exactly(tmp_path):
    """The fast C-engine path (speed is measured in bench/bench_ingest.py, not here)."""
    n = 200_000
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"id": np.arange(1, n + 1), "frame": rng.integers(1, 5000, n),
                          "x [nm]": rng.uniform(0, 4e4, n).round(2), "y [nm]": rng.uniform(0, 4e4, n).round(2),
                          "sigma [nm]": 150.0, "intensity [photon]": rng.uniform(100, 5000, n).round(1),
                          "offset [photon]": 10.0, "bkgstd [photon]": 5.0, "uncertainty [nm]": 12.5})
    path = tmp_path / "big.csv"
    frame.to_csv(path, index=False, quoting=csv.QUOTE_NONNUMERIC)
    table = read_localisations(path)
    assert len(table) == n
    np.testing.assert_array_equal(table.x, frame["x [nm]"].to_numpy())
