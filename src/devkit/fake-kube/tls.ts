/** Self-signed serving certificate for 127.0.0.1/localhost, also used as the kubeconfig's CA. */
import selfsigned from 'selfsigned';

export interface ServingCert {
  cert: string;
  key: string;
}

export function generateServingCert(): ServingCert {
  const attrs = [{ name: 'commonName', value: 'fake-kube' }];
  const pems = selfsigned.generate(attrs, {
    keySize: 2048,
    days: 30,
    algorithm: 'sha256',
    extensions: [
      { name: 'basicConstraints', cA: true },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, keyCertSign: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }, { type: 2, value: 'localhost' }] },
    ],
  });
  return { cert: pems.cert, key: pems.private };
}
