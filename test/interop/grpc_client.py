#!/usr/bin/python3
"""A stock gRPC client (Debian's python3-grpcio + python3-protobuf) for HyperSync's interop test.

It loads the message classes at run time from a serialized FileDescriptorSet (no protoc, no
generated _pb2), calls /hypersync.v1.HyperSync over TLS with a bearer token or a client
certificate, and prints one JSON object: what each call returned, or its gRPC error.
The descriptor set: `npx buf build proto -o hypersync.binpb`. Against the devnet:
  /usr/bin/python3 test/interop/grpc_client.py --devnet .devnet --descriptors hypersync.binpb \\
    --execute kv.get '{"key":"a"}'
Run with /usr/bin/python3: Debian's grpcio is built for that interpreter only.
"""
import argparse
import json
import os
import sys

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, struct_pb2  # noqa: F401 (struct_pb2 registers google/protobuf/struct.proto)

try:
    from google.protobuf.message_factory import GetMessageClass
except ImportError:  # protobuf < 4.22 (Debian 12 ships 3.21 / 4.21)
    from google.protobuf import message_factory

    _factory = message_factory.MessageFactory(descriptor_pool.Default())

    def GetMessageClass(desc):
        return _factory.GetPrototype(desc)

SERVICE = '/hypersync.v1.HyperSync/'


def load_messages(path):
    fds = descriptor_pb2.FileDescriptorSet.FromString(open(path, 'rb').read())
    pool = descriptor_pool.Default()
    for f in fds.file:
        try:
            pool.FindFileByName(f.name)
        except KeyError:
            pool.AddSerializedFile(f.SerializeToString())
    return {name: GetMessageClass(pool.FindMessageTypeByName('hypersync.v1.' + name))
            for name in ('OperatorRequest', 'OperatorResponse', 'StreamRequest', 'Result')}


def error_of(e):
    trailers = dict(e.trailing_metadata() or ())
    return {'error': {'code': e.code().name, 'message': e.details(),
                      'hypersync_code': trailers.get('hypersync-error-code')}}


def to_dict(msg):
    return json_format.MessageToDict(msg, preserving_proto_field_name=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--devnet', help='devnet folder: target, CA and token from its endpoints.json')
    p.add_argument('--target', help='host:port')
    p.add_argument('--server-name', default='localhost', help='name the server certificate must carry')
    p.add_argument('--ca')
    p.add_argument('--descriptors', required=True, help='serialized FileDescriptorSet')
    p.add_argument('--token')
    p.add_argument('--cert')
    p.add_argument('--key')
    p.add_argument('--execute', nargs=2, action='append', default=[], metavar=('OPERATOR', 'INPUTS_JSON'))
    p.add_argument('--idempotency-key', default='')
    p.add_argument('--stream', type=int, default=0, help='read this many StreamResults messages, then cancel')
    p.add_argument('--from-index', type=int, default=0)
    p.add_argument('--filter', action='append', default=[])
    p.add_argument('--timeout', type=float, default=10.0)
    a = p.parse_args()
    if a.devnet:
        with open(os.path.join(a.devnet, 'endpoints.json')) as f:
            ep = json.load(f)
        a.target = a.target or ep['grpc']
        a.ca = a.ca or ep['ca']
        if not (a.cert and a.key):
            a.token = a.token or ep['token']
    if not a.target or not a.ca:
        p.error('give --devnet DIR, or --target HOST:PORT and --ca FILE')

    m = load_messages(a.descriptors)
    creds = grpc.ssl_channel_credentials(
        root_certificates=open(a.ca, 'rb').read(),
        private_key=open(a.key, 'rb').read() if a.key else None,
        certificate_chain=open(a.cert, 'rb').read() if a.cert else None)
    metadata = [('authorization', 'Bearer ' + a.token)] if a.token else []
    out = {'execute': [], 'stream': None}
    with grpc.secure_channel(a.target, creds, options=[('grpc.ssl_target_name_override', a.server_name)]) as ch:
        execute = ch.unary_unary(SERVICE + 'ExecuteOperator',
                                 request_serializer=m['OperatorRequest'].SerializeToString,
                                 response_deserializer=m['OperatorResponse'].FromString)
        for op, inputs in a.execute:
            req = json_format.ParseDict({'operator_id': op, 'inputs': json.loads(inputs),
                                         'options': {'idempotency_key': a.idempotency_key}}, m['OperatorRequest']())
            try:
                out['execute'].append(to_dict(execute(req, metadata=metadata, timeout=a.timeout)))
            except grpc.RpcError as e:
                out['execute'].append(error_of(e))
        if a.stream > 0:
            stream = ch.unary_stream(SERVICE + 'StreamResults',
                                     request_serializer=m['StreamRequest'].SerializeToString,
                                     response_deserializer=m['Result'].FromString)
            call = stream(m['StreamRequest'](operator_ids=a.filter, from_index=a.from_index), metadata=metadata, timeout=a.timeout)
            results = []
            try:
                for r in call:
                    results.append(to_dict(r))
                    if len(results) >= a.stream:
                        break
                out['stream'] = results
            except grpc.RpcError as e:
                out['stream'] = error_of(e)
            finally:
                call.cancel()
    json.dump(out, sys.stdout)
    sys.stdout.write('\n')


if __name__ == '__main__':
    main()
