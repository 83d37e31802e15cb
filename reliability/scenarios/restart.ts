import type { Row, RunContext } from '../lib/row.js';
import { newRow } from '../lib/row.js';
export async function restart(_ctx: RunContext): Promise<Row> { const r = newRow('restart', 'not yet'); r.failed.push('not written'); return r; }
