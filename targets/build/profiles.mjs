// Owns: reading and validating the board profiles in targets/*.json.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO } from './bundle.mjs';
// The broker's one option table (runtime/broker/option-table.ts), as `npm run build` compiled it.
import { OPTION_BY_KEY } from '../../dist/runtime/broker/option-table.js';

const ARCHES = ['x64', 'arm64', 'arm'];

function check(p, file) {
  const bad = (why) => { throw new Error(`${file}: ${why}`); };
  if (!/^[a-z0-9-]+$/.test(p.name || '')) bad('"name" must be lower-case letters, digits and dashes');
  if (`${p.name}.json` !== file) bad(`"name" must match the file name`);
  if (p.platform !== 'linux') bad('"platform" must be "linux"');
  if (!ARCHES.includes(p.arch)) bad(`"arch" must be one of ${ARCHES.join(', ')} (Node's process.arch)`);
  if (p.arch === 'arm' && ![6, 7].includes(p.armVersion)) bad('"armVersion" must be 6 or 7 for arm');
  if (!/^\d+\.\d+\.\d+$/.test(p.minNode || '')) bad('"minNode" must look like 18.0.0');
  if (!Array.isArray(p.channels)) bad('"channels" must be an array');
  if (!(p.budget && Number.isInteger(p.budget.jsBytes))) bad('"budget.jsBytes" must be an integer');
  for (const k of Object.keys(p.config || {})) if (!OPTION_BY_KEY.has(k)) bad(`config key "${k}" is not a broker option (runtime/broker/option-table.ts)`);
  if (!['drop', 'disconnect'].includes(p.config?.slowConsumer)) bad('config.slowConsumer must be "drop" or "disconnect"');
  return p;
}

/** Every profile, by name. */
export function loadProfiles() {
  const dir = join(REPO, 'targets');
  const out = {};
  for (const f of readdirSync(dir).filter((f) => f.endsWith('.json')).sort()) {
    out[f.slice(0, -5)] = check(JSON.parse(readFileSync(join(dir, f), 'utf8')), f);
  }
  return out;
}
