// DICOM Part-10 files in and out through dcmjs. Reading stops before the pixel data (only the
// header is needed); a bare data set without the 128-byte preamble and file meta group, which
// old archives still hold, is given one first, since dcmjs reads only proper Part-10 files.
import * as dcmjs from 'dcmjs';
import { bareDataSetSyntax } from '../data/dicom';
import { TRANSFER_SYNTAX_EXPLICIT_LE } from './identity';
import { derivedUid } from './uids';

const { DicomDict, DicomMessage, DicomMetaDictionary } = dcmjs.data;
// dcmjs logs every oddity of a source file (bad lengths, unknown tags) on the console.
dcmjs.log.setLevel('silent');

export type Dataset = dcmjs.NaturalDataset;

const IMPLEMENTATION_CLASS_UID = derivedUid('cxr', 'implementation class');
const IMPLEMENTATION_VERSION = 'CXR_1';

function arrayBuffer(b: Uint8Array): ArrayBuffer {
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
}

function hasPreamble(b: Uint8Array): boolean {
  return b.length >= 132 && b[128] === 0x44 && b[129] === 0x49 && b[130] === 0x43 && b[131] === 0x4d;
}

function fileMeta(transferSyntax: string, sop?: { classUid: string; instanceUid: string }): dcmjs.DenaturalizedDataset {
  return DicomMetaDictionary.denaturalizeDataset({
    FileMetaInformationVersion: new Uint8Array([0, 1]).buffer,
    ...(sop ? { MediaStorageSOPClassUID: sop.classUid, MediaStorageSOPInstanceUID: sop.instanceUid } : {}),
    TransferSyntaxUID: transferSyntax,
    ImplementationClassUID: IMPLEMENTATION_CLASS_UID,
    ImplementationVersionName: IMPLEMENTATION_VERSION,
  });
}

/** The data set of a DICOM file, without its pixel data. Throws when the bytes are not DICOM. */
export function readHeader(bytes: Uint8Array): Dataset {
  let file = bytes;
  if (!hasPreamble(bytes)) {
    const syntax = bareDataSetSyntax(bytes);
    if (!syntax) throw new Error('not a DICOM file');
    file = Buffer.concat([Buffer.from(new DicomDict(fileMeta(syntax)).write()), bytes]);
  }
  const dict = DicomMessage.readFile(arrayBuffer(file), { untilTag: '7FE00010', includeUntilTagValue: false });
  return DicomMetaDictionary.naturalizeDataset(dict.dict);
}

/** A data set as a Part-10 file in explicit VR little endian (uncompressed). */
export function writePart10(ds: Dataset): Buffer {
  const classUid = ds.SOPClassUID as string;
  const instanceUid = ds.SOPInstanceUID as string;
  const dict = new DicomDict(fileMeta(TRANSFER_SYNTAX_EXPLICIT_LE, { classUid, instanceUid }));
  dict.dict = DicomMetaDictionary.denaturalizeDataset(ds);
  return Buffer.from(dict.write());
}
