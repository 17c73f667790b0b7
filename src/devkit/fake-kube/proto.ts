/**
 * Decoder for the Kubernetes protobuf envelope, for the few types kubectl's typed client POSTs/PUTs
 * as protobuf (kubectl create namespace/secret/configmap/serviceaccount, auth can-i).
 * client-go does not fall back to JSON on 415, so the fake has to read these.
 */
type Fields = Map<number, Array<bigint | Buffer>>;

function readVarint(b: Buffer, pos: { i: number }): bigint {
  let out = 0n;
  let shift = 0n;
  for (;;) {
    if (pos.i >= b.length) throw new Error('truncated varint');
    const byte = b[pos.i++]!;
    out |= BigInt(byte & 0x7f) << shift;
    if (!(byte & 0x80)) return out;
    shift += 7n;
  }
}

function fields(b: Buffer): Fields {
  const out: Fields = new Map();
  const pos = { i: 0 };
  while (pos.i < b.length) {
    const tag = Number(readVarint(b, pos));
    const num = tag >> 3;
    let v: bigint | Buffer;
    switch (tag & 7) {
      case 0:
        v = readVarint(b, pos);
        break;
      case 1:
        v = b.subarray(pos.i, (pos.i += 8));
        break;
      case 2: {
        const len = Number(readVarint(b, pos));
        v = b.subarray(pos.i, (pos.i += len));
        break;
      }
      case 5:
        v = b.subarray(pos.i, (pos.i += 4));
        break;
      default:
        throw new Error(`unsupported wire type ${tag & 7}`);
    }
    if (pos.i > b.length) throw new Error('truncated field');
    out.set(num, [...(out.get(num) ?? []), v]);
  }
  return out;
}

type Spec = { [num: number]: [string, Kind] };
type Kind = 'string' | 'bytes' | 'int' | 'bool' | 'strings' | 'map' | 'bytesMap' | Spec | { repeated: Spec };

function decode(b: Buffer, spec: Spec): Record<string, unknown> {
  const f = fields(b);
  const out: Record<string, unknown> = {};
  for (const [num, [name, kind]] of Object.entries(spec)) {
    const vs = f.get(Number(num));
    if (!vs?.length) continue;
    const last = vs[vs.length - 1]!;
    const str = (v: bigint | Buffer) => (Buffer.isBuffer(v) ? v.toString('utf8') : String(v));
    if (kind === 'string') {
      if (str(last) !== '') out[name] = str(last); // proto2 emits unset strings as ""
    }
    else if (kind === 'bytes') out[name] = (last as Buffer).toString('base64');
    else if (kind === 'int') out[name] = Number(last);
    else if (kind === 'bool') out[name] = last === 1n;
    else if (kind === 'strings') out[name] = vs.map(str);
    else if (kind === 'map' || kind === 'bytesMap') {
      const m: Record<string, string> = {};
      for (const e of vs) {
        const kv = fields(e as Buffer);
        const k = (kv.get(1)?.[0] as Buffer | undefined)?.toString('utf8') ?? '';
        const val = (kv.get(2)?.[0] as Buffer | undefined) ?? Buffer.alloc(0);
        m[k] = kind === 'map' ? val.toString('utf8') : val.toString('base64');
      }
      out[name] = m;
    } else if ('repeated' in kind) out[name] = vs.map((v) => decode(v as Buffer, kind.repeated as Spec));
    else out[name] = decode(last as Buffer, kind as Spec);
  }
  return out;
}

const META: Spec = { 1: ['name', 'string'], 2: ['generateName', 'string'], 3: ['namespace', 'string'], 6: ['resourceVersion', 'string'], 11: ['labels', 'map'], 12: ['annotations', 'map'], 14: ['finalizers', 'strings'] };
const REF: Spec = { 1: ['name', 'string'] };
const TYPES: Record<string, Spec> = {
  Namespace: { 1: ['metadata', META], 2: ['spec', { 1: ['finalizers', 'strings'] }] },
  Secret: { 1: ['metadata', META], 2: ['data', 'bytesMap'], 3: ['type', 'string'], 4: ['stringData', 'map'], 5: ['immutable', 'bool'] },
  ConfigMap: { 1: ['metadata', META], 2: ['data', 'map'], 3: ['binaryData', 'bytesMap'], 4: ['immutable', 'bool'] },
  ServiceAccount: { 1: ['metadata', META], 3: ['imagePullSecrets', { repeated: REF }], 4: ['automountServiceAccountToken', 'bool'] },
  SelfSubjectAccessReview: {
    1: ['metadata', META],
    2: [
      'spec',
      {
        1: ['resourceAttributes', { 1: ['namespace', 'string'], 2: ['verb', 'string'], 3: ['group', 'string'], 4: ['version', 'string'], 5: ['resource', 'string'], 6: ['subresource', 'string'], 7: ['name', 'string'] }],
        2: ['nonResourceAttributes', { 1: ['path', 'string'], 2: ['verb', 'string'] }],
      },
    ],
  },
  DeleteOptions: {
    1: ['gracePeriodSeconds', 'int'],
    2: ['preconditions', { 1: ['uid', 'string'], 2: ['resourceVersion', 'string'] }],
    3: ['orphanDependents', 'bool'],
    4: ['propagationPolicy', 'string'],
    5: ['dryRun', 'strings'],
  },
  SelfSubjectRulesReview: { 1: ['metadata', META], 2: ['spec', { 1: ['namespace', 'string'] }] },
};

/** The JSON text of a protobuf-encoded object, or undefined when its kind is not one this decoder knows. */
export function protobufToJson(body: Buffer): string | undefined {
  if (body.length < 4 || body.subarray(0, 4).toString('latin1') !== 'k8s\0') return undefined;
  const unknown = fields(body.subarray(4));
  const typeMeta = fields((unknown.get(1)?.[0] as Buffer) ?? Buffer.alloc(0));
  const apiVersion = (typeMeta.get(1)?.[0] as Buffer | undefined)?.toString('utf8') ?? '';
  const kind = (typeMeta.get(2)?.[0] as Buffer | undefined)?.toString('utf8') ?? '';
  const spec = TYPES[kind];
  if (!spec) return undefined;
  const raw = (unknown.get(2)?.[0] as Buffer) ?? Buffer.alloc(0);
  return JSON.stringify({ apiVersion, kind, ...decode(raw, spec) });
}
