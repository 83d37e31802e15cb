import type { Row, RunContext } from '../lib/row.js';
import { newRow } from '../lib/row.js';
export async function soak(_ctx: RunContext): Promise<Row> { const r = newRow('soak', 'not yet'); r.failed.push('not written'); return r; }
