// The body of a DICOMweb STOW-RS request (PS3.18 10.5): multipart/related with one
// application/dicom part per instance.
import * as crypto from 'node:crypto';

export function stowBody(instances: Buffer[]): { body: Buffer; contentType: string } {
  // A random boundary cannot collide with DICOM bytes in practice; check anyway, it is cheap.
  let boundary: string;
  do boundary = `cxr-${crypto.randomBytes(16).toString('hex')}`;
  while (instances.some((b) => b.includes(boundary)));
  const parts: Buffer[] = [];
  for (const b of instances) {
    parts.push(
      Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\nContent-Length: ${b.length}\r\n\r\n`),
      b,
      Buffer.from('\r\n'),
    );
  }
  parts.push(Buffer.from(`--${boundary}--\r\n`));
  return {
    body: Buffer.concat(parts),
    contentType: `multipart/related; type="application/dicom"; boundary=${boundary}`,
  };
}
