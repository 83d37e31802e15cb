// Owns: reading an ELF shared object's header (class, machine) and ARM build attributes (Tag_CPU_arch, hard-float ABI) to check a native binary matches a target.
import { readFileSync } from 'node:fs';

/** e_machine numbers by Node's process.arch. */
export const ELF_MACHINE = { x64: 62, arm64: 183, arm: 40 };
const MACHINE_NAMES = { 62: 'x86-64', 183: 'aarch64', 40: 'arm', 3: 'i386' };

/** ARM EABI Tag_CPU_arch values (ARM IHI 0045). */
const CPU_ARCH = ['pre-v4', 'v4', 'v4T', 'v5T', 'v5TE', 'v5TEJ', 'v6', 'v6KZ', 'v6T2', 'v6K', 'v7', 'v6-M', 'v6S-M', 'v7E-M', 'v8', 'v8-R', 'v8-M.base', 'v8-M.main'];
// The levels an ARMv6 core (ARM1176JZF-S: ARMv6KZ, no Thumb-2) can run.
const RUNS_ON_V6 = new Set([0, 1, 2, 3, 4, 5, 6, 7, 9]);

function readUleb(buf, pos) {
  let value = 0, shift = 0, byte;
  do {
    byte = buf[pos++];
    value += (byte & 0x7f) * 2 ** shift;
    shift += 7;
  } while (byte & 0x80);
  return [value, pos];
}

function skipNtbs(buf, pos) {
  while (buf[pos] !== 0 && pos < buf.length) pos++;
  return pos + 1;
}

// Parses the "aeabi" file-scope attributes of a .ARM.attributes section: { cpuArch, vfpArgs }.
function parseArmAttributes(sec) {
  const out = { cpuArch: null, vfpArgs: null };
  if (sec[0] !== 0x41) return out; // 'A'
  let pos = 1;
  while (pos + 4 <= sec.length) {
    const len = sec.readUInt32LE(pos);
    const end = pos + len;
    const vendorEnd = skipNtbs(sec, pos + 4);
    const vendor = sec.toString('latin1', pos + 4, vendorEnd - 1);
    if (vendor === 'aeabi') {
      let p = vendorEnd;
      while (p < end) {
        const tag = sec[p];
        const size = sec.readUInt32LE(p + 1);
        if (tag === 1) { // Tag_File
          let q = p + 5;
          const subEnd = p + size;
          while (q < subEnd) {
            let t; [t, q] = readUleb(sec, q);
            if (t === 4 || t === 5 || t === 67) { q = skipNtbs(sec, q); continue; }
            if (t === 32) { let v; [v, q] = readUleb(sec, q); if (v !== 0) q = skipNtbs(sec, q); continue; }
            if (t === 65) { q = skipNtbs(sec, q); continue; }
            if (t >= 32 && t % 2 === 1) { q = skipNtbs(sec, q); continue; }
            let v; [v, q] = readUleb(sec, q);
            if (t === 6) out.cpuArch = v;
            if (t === 28) out.vfpArgs = v;
          }
        }
        p += size;
      }
    }
    pos = end;
  }
  return out;
}

/** Header facts of an ELF file: { bits, machine, machineName, cpuArch?, cpuArchName?, hardFloat? }; throws on a non-ELF file. */
export function readElf(file) {
  const buf = readFileSync(file);
  if (buf.length < 64 || buf.readUInt32BE(0) !== 0x7f454c46) throw new Error(`${file} is not an ELF file`);
  const bits = buf[4] === 2 ? 64 : 32;
  const le = buf[5] === 1;
  const u16 = (o) => (le ? buf.readUInt16LE(o) : buf.readUInt16BE(o));
  const u32 = (o) => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
  const machine = u16(18);
  const info = { bits, machine, machineName: MACHINE_NAMES[machine] || `machine ${machine}` };
  if (machine !== 40 || bits !== 32) return info;
  // ELF32 section headers: e_shoff at 32, e_shentsize at 46, e_shnum at 48.
  const shoff = u32(32), shentsize = u16(46), shnum = u16(48);
  for (let i = 0; i < shnum; i++) {
    const sh = shoff + i * shentsize;
    if (u32(sh + 4) !== 0x70000003) continue; // SHT_ARM_ATTRIBUTES
    const off = u32(sh + 16), size = u32(sh + 20);
    const attrs = parseArmAttributes(buf.subarray(off, off + size));
    info.cpuArch = attrs.cpuArch;
    info.cpuArchName = attrs.cpuArch == null ? null : (CPU_ARCH[attrs.cpuArch] || `arch ${attrs.cpuArch}`);
    info.hardFloat = attrs.vfpArgs === 1;
  }
  return info;
}

/** Problems (strings) that keep a native binary from running on a profile's boards; empty when it fits. */
export function elfProblems(file, profile) {
  const info = readElf(file);
  const problems = [];
  const want = ELF_MACHINE[profile.arch];
  if (info.machine !== want) problems.push(`${file} is ${info.machineName}, target ${profile.name} needs ${MACHINE_NAMES[want]}`);
  if (profile.arch === 'arm' && info.machine === 40) {
    if (profile.floatAbi === 'hard' && info.cpuArch != null && !info.hardFloat) problems.push(`${file} is not built for the hard-float ABI`);
    if (profile.armVersion === 6 && info.cpuArch != null && !RUNS_ON_V6.has(info.cpuArch)) {
      problems.push(`${file} is built for ARM ${info.cpuArchName}, which an ARMv6 Pi (Zero, 1) cannot run: compile with -march=armv6zk -mfpu=vfp -mfloat-abi=hard -marm`);
    }
  }
  return { info, problems };
}
