// Type-checked with `tsc --noEmit` against the shipped index.d.ts (scripts/test-node.sh):
// a user's program written against the documented API must compile unchanged.
import {
  BatchProcessor,
  Mesh,
  estimateDepth,
  gpuStats,
  imageToMesh,
  type DepthMap,
  type ErrorCode,
  type GpuStats,
  type JobResult,
  type OrfeasError,
  type ProgressEvent,
  type RunOptions,
} from 'orfeas'

async function main(): Promise<void> {
  const proc = new BatchProcessor({ slots: 4, device: 'auto', depth: 'auto' })
  const slots: number = proc.slots
  const controller = new AbortController()
  const options: RunOptions = {
    outDir: 'out',
    formats: ['glb', 'stl'],
    quality: 'medium',
    widthMm: 80,
    solid: true,
    signal: controller.signal,
    onProgress: (ev: ProgressEvent) => {
      switch (ev.event) {
        case 'generation_progress': {
          const pct: number = ev.data.progress
          const stage: string = ev.data.stage
          void pct
          void stage
          break
        }
        case 'generation_complete': {
          const files: string[] = ev.data.outputs.map((o) => o.path)
          void files
          break
        }
        case 'generation_error': {
          const code: ErrorCode = ev.data.code
          void code
          break
        }
        case 'batch_progress': {
          const done: number = ev.data.complete + ev.data.failed + ev.data.cancelled
          void done
          break
        }
        default:
          break
      }
    },
  }
  const results: JobResult[] = await proc.run(['a.png', Buffer.from([1, 2, 3]), new Uint8Array(4)], options)
  for (const r of results) {
    const status: 'complete' | 'error' | 'cancelled' = r.status
    const error: string | null = r.error
    const outputs: string[] = r.outputs
    const seconds: number = r.seconds
    void [status, error, outputs, seconds, r.triangles, r.watertight, r.depth, r.code]
    const method: string = r.method
    const resolution: number | null = r.resolution
    const warnings: string[] = r.warnings
    void [method, resolution, warnings]
  }

  const objects = new BatchProcessor({ method: 'triposr', weights: 'TripoSR' })
  void (await objects.run(['toy.png'], { outDir: 'out', formats: ['glb', 'field.npy'], resolution: 192, keepLargest: true }))
  const toy: Mesh = await imageToMesh('toy.png', { method: 'triposr', resolution: 128 })
  const colors: Buffer = toy.colors
  const grid: number | null = toy.resolution
  void [colors, grid, toy.method, toy.mask, toy.warnings, objects.method]

  const cutouts = new BatchProcessor({ segmenterWeights: 'BiRefNet_lite' })
  const backgrounds: string[] = cutouts.backgrounds
  const [cutout] = await cutouts.run(['a.png'], { outDir: 'out', formats: ['mask.png', 'mask.npy'], background: 'birefnet' })
  const source: string | null = cutout.mask
  const masked: Mesh = await imageToMesh('a.png', { background: 'border', segmenterWeights: 'BiRefNet_lite' })
  const maskPng: Buffer = masked.toBuffer('mask.png')
  void [backgrounds, source, maskPng, masked.mask]

  const mesh: Mesh = await imageToMesh('a.png', { quality: 'low', depth: 'inflate', signal: controller.signal })
  const vertices: Float32Array = mesh.vertices
  const faces: Uint32Array = mesh.faces
  const stl: Buffer = mesh.toBuffer('stl')
  void [vertices, faces, stl, mesh.triangleCount, mesh.vertexCount, mesh.watertight, mesh.depth]

  const depth: DepthMap = await estimateDepth(Buffer.from([]), { depth: 'relief' })
  const values: Float32Array = depth.data
  void [values, depth.width, depth.height, depth.depth]

  const stats: GpuStats = gpuStats()
  const available: boolean = stats.available
  void [available, stats.gpus, stats.reason, proc.gpuStats().slots?.busy, slots]

  try {
    await imageToMesh('missing.png')
  } catch (e) {
    const code: ErrorCode = (e as OrfeasError).code
    const object: boolean = code === 'ERR_NO_FOREGROUND' || code === 'ERR_WEIGHTS_INVALID'
    void [code, object]
  }
}

void main
