// Public surface of qcop shared memory: segments, semaphores, and the ls/gc functions (SPEC §3, §4).
export { SharedMemory, DEFAULT_MAX_SEGMENT_SIZE } from './shared-memory.js';
export type { SegmentCreateOptions, AttachOptions } from './shared-memory.js';
export type { LockOptions, LockResult } from './lock.js';
export { SystemSemaphore, MAX_SEMAPHORE_VALUE } from './semaphore.js';
export type { SemaphoreOpenOptions, AcquireOptions } from './semaphore.js';
export { listSegments, collectGarbage } from './gc.js';
export type { SegmentInfo, GcResult } from './gc.js';
export { validateKey, systemName } from './names.js';
export { nativeAvailable } from '../native/index.js';
