/**
 * Record sizes, signatures and flags of the zip format (PKWARE APPNOTE)
 * that the stored-zip writer and the artifact reader share.
 */
export const ZIP = {
  /** Fixed part of a local file header, before the name and extra field. */
  localHeaderBytes: 30,
  localHeaderSignature: 0x04034b50,
  /** Signature, CRC-32, compressed and uncompressed size. */
  dataDescriptorBytes: 16,
  dataDescriptorSignature: 0x08074b50,
  /** Fixed part of a central directory header. */
  centralHeaderBytes: 46,
  centralHeaderSignature: 0x02014b50,
  endOfCentralDirectoryBytes: 22,
  endOfCentralDirectorySignature: 0x06054b50,
  flagEncrypted: 0x0001,
  /** Data follows; CRC-32 and sizes come after it in a data descriptor. */
  flagDataDescriptor: 0x0008,
} as const;
