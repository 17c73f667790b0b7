/** `npm run fake-kube -- [--port N] [--k8s-version 1.29] [--no-oom-kill NODE] [--deny-configz]`: runs the fake API until SIGTERM/SIGINT. */
import { startFakeKube, type FakeKubeOptions } from './index.ts';

function parseArgs(argv: string[]): FakeKubeOptions {
  const opts: FakeKubeOptions = { port: 0 };
  const nodes = [{ name: 'node-1', singleProcessOOMKill: true as boolean | null }];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const [flag, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case '--port': {
        const p = Number(value());
        if (!Number.isInteger(p) || p < 0 || p > 65535) throw new Error('--port must be 0..65535');
        opts.port = p;
        break;
      }
      case '--k8s-version': {
        const m = /^v?(\d+)\.(\d+)(?:\.(\d+))?$/.exec(value());
        if (!m) throw new Error('--k8s-version expects e.g. 1.29');
        opts.version = { major: m[1]!, minor: m[2]!, gitVersion: `v${m[1]}.${m[2]}.${m[3] ?? '1'}` };
        break;
      }
      case '--no-oom-kill': {
        const name = value();
        const n = nodes.find((x) => x.name === name);
        if (n) n.singleProcessOOMKill = false;
        else nodes.push({ name, singleProcessOOMKill: false });
        break;
      }
      case '--deny-configz':
        // as with manifests/base: no nodes/proxy, so the kubelet configuration cannot be read
        opts.deny = [...(opts.deny ?? []), { verb: 'get', resource: 'nodes', subresource: 'proxy' }];
        break;
      case '--help':
      case '-h':
        process.stdout.write('usage: fake-kube [--port N] [--k8s-version 1.29] [--no-oom-kill NODE] [--deny-configz]\n');
        process.exit(0);
      default:
        throw new Error(`unknown flag ${a}`);
    }
  }
  opts.nodes = nodes;
  return opts;
}

export async function runFakeKubeCli(argv: string[]): Promise<void> {
  let opts: FakeKubeOptions;
  try {
    opts = parseArgs(argv);
  } catch (e) {
    process.stderr.write(`fake-kube: ${(e as Error).message}\n`);
    process.exit(2);
  }
  const kube = await startFakeKube(opts);
  process.stdout.write(
    `fake Kubernetes API on ${kube.url}\nKUBECONFIG=${kube.kubeconfigPath}\ntry: helm --kubeconfig ${kube.kubeconfigPath} list -A\n`,
  );
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  await kube.close();
  process.exit(0);
}
