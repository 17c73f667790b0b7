/** Writes the kubeconfig (context "fake", embedded CA, bearer token user) for the fake API. */
import { writeFile, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { stringify } from 'yaml';

export async function writeKubeconfig(dir: string, url: string, caPem: string): Promise<string> {
  const path = join(dir, 'kubeconfig');
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    'current-context': 'fake',
    clusters: [{ name: 'fake', cluster: { server: url, 'certificate-authority-data': Buffer.from(caPem).toString('base64') } }],
    users: [{ name: 'fake-admin', user: { token: randomBytes(16).toString('hex') } }],
    contexts: [{ name: 'fake', context: { cluster: 'fake', user: 'fake-admin', namespace: 'default' } }],
    preferences: {},
  };
  await writeFile(path, stringify(config), { mode: 0o600 });
  await chmod(path, 0o600);
  await writeFile(join(dir, 'ca.crt'), caPem, { mode: 0o600 });
  return path;
}
