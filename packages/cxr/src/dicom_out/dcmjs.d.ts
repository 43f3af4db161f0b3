// The part of dcmjs (MIT, no bundled types) that dicom_out uses: naturalized data sets (attribute
// keywords as keys) to and from Part-10 bytes.
declare module 'dcmjs' {
  /** A data set keyed by DICOM keyword; sequences are arrays of such objects. */
  export type NaturalDataset = { [keyword: string]: unknown };
  export interface DenaturalizedDataset {
    [tag: string]: { vr: string; Value?: unknown[] };
  }
  export namespace data {
    class DicomDict {
      constructor(meta: DenaturalizedDataset);
      meta: DenaturalizedDataset;
      dict: DenaturalizedDataset;
      write(options?: { allowInvalidVRLength?: boolean }): ArrayBuffer;
    }
    class DicomMessage {
      static readFile(
        buffer: ArrayBuffer,
        options?: { untilTag?: string; includeUntilTagValue?: boolean; ignoreErrors?: boolean },
      ): DicomDict;
    }
    /** The stream dcmjs reads a file from (part10.ts counts the words read from it). */
    class ReadBufferStream {}
    class DicomMetaDictionary {
      static naturalizeDataset(dataset: DenaturalizedDataset): NaturalDataset;
      static denaturalizeDataset(dataset: NaturalDataset): DenaturalizedDataset;
    }
  }
  export const log: { setLevel(level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'silent'): void };
}
