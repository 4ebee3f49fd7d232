// ES module entry: the same native binding as `require('orfeas')`, loaded through the
// CommonJS loader (index.js picks the .node file for this platform).
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const binding = require('./index.js')

export const { BatchProcessor, Mesh, imageToMesh, estimateDepth, gpuStats } = binding
export default binding
