// COBS (Consistent Overhead Byte Stuffing): frames without 0x00 inside, so 0x00 delimits them (docs/SERIAL.md §2).

/** Encodes `input`; the result holds no 0x00 and is at most `length + ceil(length / 254) + 1` bytes. */
export function cobsEncode(input: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(input.length + Math.ceil(input.length / 254) + 1);
  let codeAt = 0;
  let o = 1;
  let code = 1;
  for (let i = 0; i < input.length; i++) {
    const b = input[i]!;
    if (b === 0) {
      out[codeAt] = code;
      codeAt = o++;
      code = 1;
      continue;
    }
    out[o++] = b;
    code++;
    if (code === 0xff) {
      out[codeAt] = code;
      codeAt = o++;
      code = 1;
    }
  }
  out[codeAt] = code;
  return out.subarray(0, o);
}

/** Decodes one COBS block (without its 0x00 delimiter); null when it is malformed. */
export function cobsDecode(input: Uint8Array): Buffer | null {
  const out = Buffer.allocUnsafe(input.length);
  let o = 0;
  let i = 0;
  while (i < input.length) {
    const code = input[i]!;
    const end = i + code;
    if (code === 0 || end > input.length) return null;
    for (let j = i + 1; j < end; j++) {
      if (input[j] === 0) return null;
      out[o++] = input[j]!;
    }
    i = end;
    if (code !== 0xff && i < input.length) out[o++] = 0;
  }
  return out.subarray(0, o);
}
