// Independent checks of downloaded files (not using the page's own code): binary STL, GLB and ZIP.

/** Binary STL: 80-byte header, triangle count, 50 bytes per triangle. Returns the count. */
export function checkBinaryStl(buf) {
  if (buf.length < 84) throw new Error(`STL too short: ${buf.length} bytes`);
  const triangles = buf.readUInt32LE(80);
  if (buf.length !== 84 + 50 * triangles) {
    throw new Error(`STL size ${buf.length} does not match its ${triangles} triangles (${84 + 50 * triangles} expected)`);
  }
  if (triangles === 0) throw new Error('STL has no triangles');
  return triangles;
}

/** GLB: magic "glTF", version 2, length field equal to the size, a JSON chunk with a mesh. */
export function checkGlb(buf) {
  if (buf.length < 20) throw new Error(`GLB too short: ${buf.length} bytes`);
  if (buf.toString('latin1', 0, 4) !== 'glTF') throw new Error('GLB magic is not "glTF"');
  const version = buf.readUInt32LE(4);
  if (version !== 2) throw new Error(`GLB version ${version}, expected 2`);
  if (buf.readUInt32LE(8) !== buf.length) throw new Error(`GLB length field ${buf.readUInt32LE(8)} ≠ file size ${buf.length}`);
  const jsonLength = buf.readUInt32LE(12);
  if (buf.readUInt32LE(16) !== 0x4e4f534a) throw new Error('first GLB chunk is not JSON');
  const json = JSON.parse(buf.toString('utf8', 20, 20 + jsonLength));
  if (!Array.isArray(json.meshes) || json.meshes.length === 0) throw new Error('GLB has no mesh');
  return json;
}

/** ZIP: local header first, end-of-central-directory record last; returns the entry names. */
export function zipEntryNames(buf) {
  if (buf.readUInt32LE(0) !== 0x04034b50) throw new Error('not a ZIP (no local file header at offset 0)');
  let eocd = -1;
  for (let i = buf.length - 22; i >= Math.max(0, buf.length - 22 - 65535); i -= 1) {
    if (buf.readUInt32LE(i) === 0x06054b50) { eocd = i; break; }
  }
  if (eocd < 0) throw new Error('ZIP has no end-of-central-directory record');
  let count = buf.readUInt16LE(eocd + 10);
  let offset = buf.readUInt32LE(eocd + 16);
  // ZIP64: the classic fields are saturated; find the ZIP64 EOCD through its locator.
  if (count === 0xffff || offset === 0xffffffff) {
    const locator = eocd - 20;
    if (buf.readUInt32LE(locator) !== 0x07064b50) throw new Error('ZIP64 locator missing');
    const zip64 = Number(buf.readBigUInt64LE(locator + 8));
    count = Number(buf.readBigUInt64LE(zip64 + 32));
    offset = Number(buf.readBigUInt64LE(zip64 + 48));
  }
  const names = [];
  for (let i = 0; i < count; i += 1) {
    if (buf.readUInt32LE(offset) !== 0x02014b50) throw new Error(`ZIP central directory entry ${i} is damaged`);
    const nameLength = buf.readUInt16LE(offset + 28);
    const extraLength = buf.readUInt16LE(offset + 30);
    const commentLength = buf.readUInt16LE(offset + 32);
    names.push(buf.toString('utf8', offset + 46, offset + 46 + nameLength));
    offset += 46 + nameLength + extraLength + commentLength;
  }
  return names;
}
