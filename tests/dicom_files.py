"""DICOM files written with pydicom for the tests and the upload benchmark: a CT slice's stored values
and the file around them, with patient fields the app must never show or log."""

from __future__ import annotations

import io

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

SECRET_NAME, SECRET_ID = "Doe^Jane-SECRET", "SECRET-ID-0042"


def dicom_bytes(
    stored: np.ndarray,
    syntax=ExplicitVRLittleEndian,
    pixel_data: bytes | None = None,
    *,
    patient: tuple[str, str] = (SECRET_NAME, SECRET_ID),
    **attrs,
) -> bytes:
    """A CT DICOM file of ``stored`` (int16 or uint16, (rows, cols)); ``patient`` (name, ID) and other
    identifying fields are set so that a test can look for them; ``attrs`` set or override any tag."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = syntax
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = *patient, "19700101"
    ds.InstitutionName, ds.ReferringPhysicianName = "SECRET Hospital", "Dr^SECRET"
    ds.Modality = "CT"
    ds.Rows, ds.Columns = stored.shape[:2]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.PixelRepresentation = 1 if stored.dtype == np.int16 else 0
    for name, value in attrs.items():
        setattr(ds, name, value)
    ds.PixelData = stored.tobytes() if pixel_data is None else pixel_data
    if pixel_data is not None:
        ds["PixelData"].VR = "OB"
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()
