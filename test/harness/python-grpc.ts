// The stock Python gRPC client (test/interop/grpc_client.py on Debian's python3-grpcio) as
// tests call it: the descriptor set it builds its message classes from, and one run of it
// against a server, its JSON report parsed. Needs /usr/bin/python3 with grpc and protobuf.
import { strict as assert } from 'node:assert';
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { create, toBinary } from '@bufbuild/protobuf';
import { FileDescriptorSetSchema, file_google_protobuf_struct } from '@bufbuild/protobuf/wkt';
import type { Json } from '../../src/ico/types.ts';
import { file_hypersync_v1_hypersync } from '../../relay/api/gen/hypersync/v1/hypersync_pb.ts';

export const PYTHON = '/usr/bin/python3';
const PY_CLIENT = new URL('../interop/grpc_client.py', import.meta.url).pathname;

export interface PyError {
  error: { code: string; message: string; hypersync_code: string | null };
}
export type PyExecute = { status: string; outputs: Json; receipt_id: string; receipt: { receipt_id: string; index?: string; operation: { operator_id: string } }; replayed?: boolean } | PyError;
export interface PyOutput {
  execute: PyExecute[];
  stream: Array<{ index?: string; operator_id: string; outputs?: Json }> | PyError | null;
}

/** The interop tests need Debian's python3-grpcio and python3-protobuf (.ci/run installs them). */
export function assertPythonGrpc(): void {
  const ok = existsSync(PYTHON) && spawnSync(PYTHON, ['-c', 'import grpc, google.protobuf'], { stdio: 'ignore' }).status === 0;
  assert.ok(ok, `${PYTHON} with grpc and google.protobuf is required: apt-get install -y python3-grpcio python3-protobuf`);
}

/** Writes the FileDescriptorSet the Python client loads (the same descriptors as the generated TypeScript). */
export function writeDescriptors(dir: string): string {
  const path = join(dir, 'hypersync.binpb');
  const fds = create(FileDescriptorSetSchema, { file: [file_google_protobuf_struct.proto, file_hypersync_v1_hypersync.proto] });
  writeFileSync(path, toBinary(FileDescriptorSetSchema, fds));
  return path;
}

/** Runs the client (asynchronously: the server under test may share this event loop). */
export function runPython(target: { port: number; ca: string; descriptors: string }, args: string[]): Promise<PyOutput> {
  const base = ['--target', `127.0.0.1:${target.port}`, '--ca', target.ca, '--descriptors', target.descriptors];
  return new Promise((resolve, reject) => {
    execFile(PYTHON, [PY_CLIENT, ...base, ...args], { timeout: 30_000 }, (err, stdout, stderr) => {
      if (err !== null) reject(new Error(`python client failed: ${err.message}\n${stderr}`));
      else resolve(JSON.parse(stdout) as PyOutput);
    });
  });
}

/** The gRPC status name of the first execute call, or 'ok'. */
export function firstExecuteCode(out: PyOutput): string {
  const first = out.execute[0];
  assert.ok(first !== undefined, 'the client made no execute call');
  return 'error' in first ? first.error.code : 'ok';
}
